package shard

import (
	"encoding/binary"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardd/shardd/packet"
)

// countingEcho echoes length-prefixed messages (a raw datagram on UDP),
// counts what it served in a plain number, as packet/dns does, and
// publishes it through packet.Publisher. "drop" gets no reply.
type countingEcho struct {
	packet.LengthPrefixed
	served    uint64 // the serving side's own
	published atomic.Uint64
}

func (h *countingEcho) ServePacket(w *packet.ReplyWriter, p *packet.Packet) error {
	h.served++
	if string(p.Data) == "drop" {
		return nil
	}
	_, err := w.Write(p.Data)
	return err
}

func (h *countingEcho) Publish() { h.published.Store(h.served) }

// publishWatch records, at each writeBatch, what the handler had
// published by the time the first reply leaves (after ready).
type publishWatch struct {
	batchConn
	h    *countingEcho
	seen []uint64
}

func (w *publishWatch) writeBatch(replies []packet.Reply, ready func()) (int, error) {
	return w.batchConn.writeBatch(replies, func() {
		ready()
		w.seen = append(w.seen, w.h.published.Load())
	})
}

// TestHandlerPublishesBeforeRepliesLeave: a handler that implements
// packet.Publisher has published the counts of a batch before the batch's
// replies are handed to the kernel, and a batch with no reply publishes too.
func TestHandlerPublishesBeforeRepliesLeave(t *testing.T) {
	eachIO(t, func(t *testing.T, noBatch bool) {
		h := &countingEcho{}
		var w *publishWatch
		_, _, serve := driveShard(t, Config{noBatchIO: noBatch, NewHandler: func(int) packet.Handler { return h }}, func(s *shard) batchConn {
			w = &publishWatch{batchConn: s.bc, h: h}
			return w
		})
		serve("one", "two", "three")
		if len(w.seen) == 0 || w.seen[len(w.seen)-1] != 3 {
			t.Fatalf("published by the handler when replies left: %v, want 3 at the last send", w.seen)
		}
		sends := len(w.seen)
		serve("drop")
		if got := h.published.Load(); got != 4 || len(w.seen) != sends {
			t.Fatalf("after a batch with no reply: published %d (%d sends more), want 4 (none)", got, len(w.seen)-sends)
		}
	})
}

// TestTCPHandlerPublishesBeforeRepliesLeave: on TCP too, a client that has
// its replies finds them counted by the handler.
func TestTCPHandlerPublishesBeforeRepliesLeave(t *testing.T) {
	for _, loop := range []bool{true, false} {
		t.Run(shapeOf(loop).String(), func(t *testing.T) {
			h := &countingEcho{}
			g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop), NewHandler: func(int) packet.Handler { return h }})
			c := dialTCP(t, tcpAddr(g))
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			for i, m := range []string{"a", "bb", "ccc"} {
				if _, err := c.Write(packet.LengthPrefixed{}.AppendFrame(nil, []byte(m))); err != nil {
					t.Fatal(err)
				}
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil || int(binary.BigEndian.Uint16(l[:])) != len(m) {
					t.Fatalf("reply %d: %v", i, err)
				}
				if _, err := io.ReadFull(c, make([]byte, len(m))); err != nil {
					t.Fatal(err)
				}
				if got := h.published.Load(); got != uint64(i+1) {
					t.Fatalf("after reply %d the handler had published %d", i+1, got)
				}
			}
		})
	}
}
