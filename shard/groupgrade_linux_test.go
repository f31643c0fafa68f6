package shard

import (
	"context"
	"net/netip"
	"testing"

	"github.com/shardd/shardd/shard/mmsg"
)

// TestGROOffAfterUpgradeKeepsQueuedBuffersWhole: an upgrade from a process
// with GRO on to one with GRO off, while the socket's queue holds coalesced
// buffers (GSO sends queued before anyone reads). The kernel coalesces as
// it queues and tells a buffer's segment size only while UDP_GRO is on: the
// new group must keep it on and split those buffers, every datagram echoed
// whole and counted once, then turn it off once idle, after which a GSO
// send arrives as plain datagrams (no GRO buffer observed).
func TestGROOffAfterUpgradeKeepsQueuedBuffersWhole(t *testing.T) {
	cfg := Config{Addr: "127.0.0.1:0", Shards: 1, GRO: OffloadOn}
	old, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client := udpClient(t)
	if err := client.SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(old))
	queued := gsoPayloads(3*64, 100)
	sendGSO(t, client, to, queued, 100) // 3 sends of 64, queued coalesced: nobody reads yet

	cfg = upgradeConfig(t, cfg, old)
	cfg.GRO = OffloadOff
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := old.Handoff(ctx); err != nil { // never served: it closes its descriptors
		t.Fatal(err)
	}
	g := startGroup(t, cfg)
	readBack(t, client, queued)
	waitFor(t, "the counters", func() bool { return shard0(g).TxPackets == uint64(len(queued)) })
	c := shard0(g)
	if c.RxPackets != uint64(len(queued)) || c.Truncated != 0 || c.GROSegments[6] != 3 {
		t.Fatalf("rx %d (%d truncated), per buffer %v: want %d datagrams, in 3 buffers of 64", c.RxPackets, c.Truncated, c.GROSegments, len(queued))
	}

	// Idle now: UDP_GRO goes off on the socket, and a GSO send is queued
	// as plain datagrams, with no GRO buffer observed.
	s := g.shards[0]
	waitFor(t, "UDP_GRO off on the inherited socket", func() bool {
		on := true
		_ = s.rc.Control(func(fd uintptr) { on = mmsg.GROOn(fd) })
		return !on
	})
	later := gsoPayloads(64, 80)
	sendGSO(t, client, to, later, 80)
	readBack(t, client, later)
	want := uint64(len(queued) + len(later))
	waitFor(t, "the counters", func() bool { return shard0(g).TxPackets == want })
	c = shard0(g)
	if c.RxPackets != want || c.RxBuffers != 3+64 || c.GROSegments[6] != 3 || c.GROSegments[0] != 0 {
		t.Fatalf("after GRO went off: rx %d in %d buffers, per buffer %v; want %d in %d, no more GRO observations", c.RxPackets, c.RxBuffers, c.GROSegments, want, 3+64)
	}
}

// TestGROOffWaitsForAnEmptyQueue: at an idle moment with a buffer still
// queued (come in just before), UDP_GRO goes back on so that the buffer
// is read split; with the queue empty it stays off.
func TestGROOffWaitsForAnEmptyQueue(t *testing.T) {
	g, err := Listen(Config{Addr: "127.0.0.1:0", Shards: 1, GRO: OffloadOn})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	s := g.shards[0]
	m := s.bc.(*mmsgConn)
	done := 0
	m.groOffIdle, m.groOffDone = true, func() { done++ }
	client := udpClient(t)
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
	sendGSO(t, client, to, gsoPayloads(4, 100), 100)
	waitFor(t, "the GSO send queued", func() bool {
		q := false
		_ = s.rc.Control(func(fd uintptr) { q = mmsg.Queued(fd) })
		return q
	})
	on := func() (on bool) {
		_ = s.rc.Control(func(fd uintptr) { on = mmsg.GROOn(fd) })
		return on
	}
	_ = s.rc.Control(m.groOffIfEmpty)
	if !on() || !m.groOffIdle || done != 0 {
		t.Fatalf("with a buffer queued: UDP_GRO on %v, still to go off %v, done %d; want on, to go off later", on(), m.groOffIdle, done)
	}
	n, err := m.drainBatch(s.msgs)
	if err != nil || n != 1 || s.msgs[0].segs != 4 {
		t.Fatalf("read %d buffers (%v), the first of %d datagrams; want 1 of 4", n, err, s.msgs[0].segs)
	}
	_ = s.rc.Control(m.groOffIfEmpty)
	if on() || m.groOffIdle || done != 1 {
		t.Fatalf("with the queue empty: UDP_GRO on %v, still to go off %v, done %d; want off, done once", on(), m.groOffIdle, done)
	}
}
