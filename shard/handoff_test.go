package shard

import (
	"context"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardd/shardd/packet"
)

// TestHandoffLosesNothing hands a serving group's sockets to a second group
// (as an upgrade does between processes) while a steady stream arrives: the
// two groups together receive every datagram sent, and nothing is dropped.
func TestHandoffLosesNothing(t *testing.T) {
	cfg := Config{Addr: "127.0.0.1:0", Shards: 2, UDP: true, TCP: true, NewHandler: func(int) packet.Handler { return packet.Discard{} }}
	old, oldDone := serveGroup(t, cfg)
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(old))

	var sent atomic.Uint64
	stop := make(chan struct{})
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		var conns []*net.UDPConn
		for i := 0; i < 16; i++ {
			c, err := net.ListenUDP("udp4", nil)
			if err != nil {
				return
			}
			defer c.Close()
			conns = append(conns, c)
		}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, c := range conns { // 16 datagrams a millisecond
				if _, err := c.WriteToUDPAddrPort([]byte("steady"), to); err == nil {
					sent.Add(1)
				}
			}
		}
	}()
	udpRx := func(g *Group) (rx uint64) {
		for _, s := range g.Stats(nil) {
			if s.Proto == "udp" {
				rx += s.RxPackets
			}
		}
		return rx
	}
	// The old group serves some of the stream before the handoff, the new
	// one some after it: waited for, not slept for (a starved sender could
	// send nothing in a fixed 100 ms).
	waitFor(t, "the old group to receive", func() bool { return udpRx(old) > 0 })

	cfg = upgradeConfig(t, cfg, old)
	next, nextDone := serveGroup(t, cfg)
	time.Sleep(20 * time.Millisecond) // both read for a moment, as during an upgrade
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := old.Handoff(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-oldDone; err != nil {
		t.Fatalf("old Serve: %v", err)
	}
	waitFor(t, "the new group alone to receive", func() bool { return udpRx(next) > 0 })
	// TCP: the new group accepts on the inherited listeners.
	tc, err := net.Dial("tcp", cfg.Addr)
	if err != nil {
		t.Fatalf("no TCP listener after the handoff: %v", err)
	}
	tc.Close()
	waitFor(t, "the new group accepted it", func() bool {
		for _, s := range next.Stats(nil) {
			if s.Proto == "tcp" && s.Accepted > 0 {
				return true
			}
		}
		return false
	})
	close(stop)
	<-senderDone
	want := sent.Load()
	count := func() (rx, drops uint64) {
		for _, g := range []*Group{old, next} {
			for _, s := range g.Stats(nil) {
				if s.Proto == "udp" {
					rx += s.RxPackets
					drops += s.KernelDrops
				}
			}
		}
		return rx, drops
	}
	waitFor(t, "every datagram counted", func() bool { rx, drops := count(); return rx+drops >= want })
	if err := next.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-nextDone
	rx, drops := count()
	var oldRx uint64
	for _, s := range old.Stats(nil) {
		oldRx += s.RxPackets
	}
	if rx != want || drops != 0 || oldRx == 0 || rx == oldRx {
		t.Fatalf("sent %d: received %d (old group %d), kernel drops %d; want all received by the two groups, each some", want, rx, oldRx, drops)
	}
}

// TestInheritLeftovers: a group with fewer shards than the sockets it was
// handed closes the rest (they would sit in the reuseport group unread).
func TestInheritLeftovers(t *testing.T) {
	old, err := Listen(Config{Addr: "127.0.0.1:0", Shards: 2, UDP: true, TCP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	files, err := old.Files()
	if err != nil {
		t.Fatal(err)
	}
	next, err := Listen(Config{Addr: old.Addr().String(), Shards: 1, Inherit: files, Upgrade: true})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	got := strings.Join(sortedStrings(next.Info().UnusedInherited), ",")
	if got != "tcp/0,tcp/1,udp/1" {
		t.Fatalf("unused inherited sockets %q, want tcp/0,tcp/1,udp/1 (UDP only, one shard)", got)
	}
}

// TestActivatedSocketsGetSteering: sockets handed over by systemd (not by
// an upgrade) get the steering program like freshly bound ones.
func TestActivatedSocketsGetSteering(t *testing.T) {
	src, err := Listen(Config{Addr: "127.0.0.1:0", Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	files, err := src.Files()
	if err != nil {
		t.Fatal(err)
	}
	_ = src.Close() // the copies in files keep the sockets, as systemd's do
	g := startGroup(t, Config{Addr: src.Addr().String(), Shards: 2, Inherit: files, Steer: SteerRandom, NewHandler: discardHandler})
	sendFrom(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g)), 2000, -1)
	waitFor(t, "2000 counted", func() bool { return total(perShardRx(g)) == 2000 })
	if rx := perShardRx(g); rx[0] < 700 || rx[1] < 700 {
		t.Fatalf("one flow on activated sockets with --steer random: %v", rx)
	}
}

func sortedStrings(v []string) []string {
	out := append([]string(nil), v...)
	sort.Strings(out)
	return out
}
