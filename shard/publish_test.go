package shard

import (
	"errors"
	"testing"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/packet"
)

// sendWatch wraps a shard's batchConn and records, at each writeBatch, the
// counters the shard had published by the time the first reply leaves
// (after ready): what a scrape could see at the moment the replies become
// visible to their clients.
type sendWatch struct {
	batchConn
	s      *shard
	seen   []metrics.Counts
	refuse bool // report every reply as refused by the kernel, sending nothing
}

var errRefused = errors.New("refused by the test")

func (w *sendWatch) writeBatch(replies []packet.Reply, ready func()) (int, error) {
	seen := func() {
		ready()
		w.seen = append(w.seen, w.s.ctr.Load())
	}
	if w.refuse {
		seen()
		return len(replies), errRefused
	}
	return w.batchConn.writeBatch(replies, seen)
}

// TestRepliesLeaveAfterTheirCounts: a reply is handed to the kernel only
// after the counters of its batch (the request received, the reply sent)
// are published, so a client that saw a reply never scrapes a count that
// lacks it. A reply the kernel refuses stays counted as sent and is counted
// as a send error too: the published counters never go down.
func TestRepliesLeaveAfterTheirCounts(t *testing.T) {
	eachIO(t, func(t *testing.T, noBatch bool) {
		var w *sendWatch
		s, c, serve := driveShard(t, Config{noBatchIO: noBatch}, func(s *shard) batchConn {
			w = &sendWatch{batchConn: s.bc, s: s}
			return w
		})
		serve("one", "two", "three")
		if len(w.seen) == 0 {
			t.Fatal("no reply was sent")
		}
		at := w.seen[len(w.seen)-1]
		if at.RxPackets != 3 || at.TxPackets != 3 || at.TxBytes != 11 || at.RxBytes != 11 {
			t.Fatalf("published when the last replies left: rx %d (%d B), tx %d (%d B); want 3 (11 B) each way",
				at.RxPackets, at.RxBytes, at.TxPackets, at.TxBytes)
		}
		buf := make([]byte, 16)
		for i := 0; i < 3; i++ {
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				t.Fatal(err)
			}
		}

		w.refuse = true
		serve("refused")
		got := s.ctr.Load()
		if got.TxPackets != 4 || got.TxBytes != 18 || got.SendErrors != 1 || got.RxPackets != 4 {
			t.Fatalf("after a refused reply: rx %d, tx %d (%d B), send errors %d; want rx 4, tx 4 (18 B), 1 send error",
				got.RxPackets, got.TxPackets, got.TxBytes, got.SendErrors)
		}
	})
}
