package shard

import (
	"net/netip"
	"testing"
)

// TestGROOnUpgradeOldProcessReadsBuffersSplit: an upgrade from a process
// with GRO off to one with GRO on. The new group turns UDP_GRO on at
// Listen, on the socket it shares with the old group, which serves until
// the hand-over: a flow's datagrams then reach the old group coalesced. It
// must split them as the new one would, every datagram echoed whole and
// counted once (read as one long datagram, 64 became one echo and one
// count).
func TestGROOnUpgradeOldProcessReadsBuffersSplit(t *testing.T) {
	cfg := Config{Addr: "127.0.0.1:0", Shards: 1, GRO: OffloadOff}
	old := startGroup(t, cfg)
	next := upgradeConfig(t, cfg, old)
	next.GRO = OffloadOn
	g, err := Listen(next) // not serving: the old group alone reads
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	client := udpClient(t)
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(old))
	payloads := gsoPayloads(2*64, 100)
	sendGSO(t, client, to, payloads, 100)
	readBack(t, client, payloads)
	want := uint64(len(payloads))
	waitFor(t, "the counters", func() bool { return shard0(old).TxPackets >= want })
	if c := shard0(old); c.RxPackets != want || c.TxPackets != want || c.Truncated != 0 {
		t.Fatalf("old group: rx %d, tx %d, %d truncated; want %d each way", c.RxPackets, c.TxPackets, c.Truncated, want)
	}
}
