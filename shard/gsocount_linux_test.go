package shard

import (
	"bytes"
	"testing"
	"time"

	"github.com/shardd/shardd/metrics"
)

// TestGSOCountedBeforeTheRepliesLeave: the GSO sends of a batch are
// counted and published with the batch's other counters, before the send
// that carries them is handed to the kernel, so a client that saw a reply
// scrapes it counted, and a batch is published once. The send call is
// watched: at each, the published counters must already show what it
// carries. Afterwards the counters are exact: every datagram in and out.
func TestGSOCountedBeforeTheRepliesLeave(t *testing.T) {
	var seen []metrics.Counts
	var carried []int
	s, c, serve := driveShard(t, Config{GSO: OffloadOn}, func(s *shard) batchConn {
		m := s.bc.(*mmsgConn)
		m.sendCall = func(fd uintptr) {
			seen = append(seen, s.ctr.Load())
			carried = append(carried, m.txGroups[m.txFrom].segs)
			m.send(fd)
		}
		return m
	})
	payloads := gsoPayloads(8, 300)
	strs := make([]string, len(payloads))
	for i, p := range payloads {
		strs[i] = string(p)
	}
	serve(strs...)
	if len(seen) == 0 {
		t.Fatal("no send call")
	}
	var grouped uint64
	for i, at := range seen {
		if carried[i] > 1 {
			grouped += uint64(carried[i])
		}
		if at.TxGSODatagrams < grouped || at.TxPackets < at.TxGSODatagrams || at.RxPackets < at.TxPackets {
			t.Fatalf("send %d carried %d replies (%d by GSO so far); published then: rx %d, tx %d, %d by GSO",
				i, carried[i], grouped, at.RxPackets, at.TxPackets, at.TxGSODatagrams)
		}
	}
	if grouped == 0 {
		t.Fatalf("no GSO send among %d send calls (carried %v): the test proves nothing", len(seen), carried)
	}
	buf := make([]byte, 2000)
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	for i := range payloads {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil || !bytes.Equal(buf[:n], payloads[i]) {
			t.Fatalf("reply %d: %d bytes, %v", i, n, err)
		}
	}
	got := s.ctr.Load()
	if got.RxPackets != 8 || got.TxPackets != 8 || got.RxBytes != 2400 || got.TxBytes != 2400 || got.TxGSODatagrams != grouped || got != s.counts {
		t.Fatalf("published: rx %d (%d B), tx %d (%d B), %d by GSO; want 8 (2400 B) each way, %d by GSO, and all the shard counted",
			got.RxPackets, got.RxBytes, got.TxPackets, got.TxBytes, got.TxGSODatagrams, grouped)
	}
}
