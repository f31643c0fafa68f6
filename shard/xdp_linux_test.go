package shard

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/shard/netnstest"
)

// listenXDP listens in the pair's namespace B on B's addresses (":port",
// both families) with --xdp on B's end of the pair.
func listenXDP(t testing.TB, p *netnstest.Pair, cfg Config) *Group {
	t.Helper()
	cfg.XDP = []string{p.DevB}
	var g *Group
	var err error
	p.B.Run(t, func() { g, err = Listen(cfg) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

// xdpClients sends count datagrams to each of B's addresses from n
// sockets per family in namespace A (different sockets hash to different
// queues), each with its own payload, and checks every reply byte for byte.
func xdpClients(t *testing.T, p *netnstest.Pair, port uint16, n, count int) int {
	t.Helper()
	sent := 0
	for _, dst := range []netip.Addr{p.B4, p.B6} {
		for c := 0; c < n; c++ {
			var conn *net.UDPConn
			var err error
			p.A.Run(t, func() { conn, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, port))) })
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 2048)
			for i := 0; i < count; i++ {
				msg := fmt.Appendf(nil, "%s client %d datagram %d %s", dst, c, i, make([]byte, i*13))
				if _, err := conn.Write(msg); err != nil {
					t.Fatal(err)
				}
				_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				m, err := conn.Read(buf)
				if err != nil || string(buf[:m]) != string(msg) {
					t.Fatalf("reply to %s: %q, %v; want %q", dst, buf[:max(m, 0)], err, msg)
				}
				sent++
			}
			conn.Close()
		}
	}
	return sent
}

// protoTotals sums the snapshots' received and sent datagrams by Proto.
func protoTotals(snaps []metrics.Snapshot) (rx, tx map[string]uint64) {
	rx, tx = map[string]uint64{}, map[string]uint64{}
	for _, s := range snaps {
		rx[s.Proto] += s.RxPackets
		tx[s.Proto] += s.TxPackets
	}
	return rx, tx
}

// TestXDPEchoCountsAndDetach: with one queue per shard every datagram, IPv4
// and IPv6, goes through the AF_XDP sockets and is echoed byte for byte
// (the kernel drops a reply with a bad checksum), the xdp snapshots count
// them exactly and the UDP sockets see none; the stop detaches the program
// and leaves the interface as it was.
func TestXDPEchoCountsAndDetach(t *testing.T) {
	p := netnstest.NewPair(t, 2)
	before := p.B.IP(t, "-d", "link", "show", p.DevB)
	g := listenXDP(t, p, Config{Addr: ":0", Shards: 2})
	served := make(chan error, 1)
	go func() { served <- g.Serve(context.Background()) }()
	if out := p.B.IP(t, "link", "show", p.DevB); !strings.Contains(out, "xdp") {
		t.Fatalf("no program on the interface:\n%s", out)
	}
	sent := xdpClients(t, p, groupPort(g), 4, 10)
	snaps := g.Stats(nil)
	rx, tx := protoTotals(snaps)
	if rx["xdp"] != uint64(sent) || tx["xdp"] != uint64(sent) || rx["udp"] != 0 {
		t.Fatalf("sent %d: received %v, sent %v by proto", sent, rx, tx)
	}
	for _, s := range snaps {
		if s.Proto == "xdp" && (s.XDP.RxDropped != 0 || s.XDP.RxInvalid != 0 || s.XDP.TxInvalid != 0 || s.SendErrors != 0) {
			t.Fatalf("shard %d: %+v", s.Shard, s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if after := p.B.IP(t, "-d", "link", "show", p.DevB); after != before {
		t.Fatalf("the interface changed:\nbefore %s\nafter  %s", before, after)
	}
}

// TestXDPQueuesAndShardsDiffer: more shards than queues leaves the extra
// shards without an AF_XDP socket; more queues than shards passes the
// extra queues' datagrams to the UDP sockets. Either way every datagram is
// answered once and counted once.
func TestXDPQueuesAndShardsDiffer(t *testing.T) {
	for _, c := range []struct{ queues, shards, sockets int }{{1, 2, 1}, {3, 1, 1}} {
		t.Run(fmt.Sprintf("queues%d-shards%d", c.queues, c.shards), func(t *testing.T) {
			p := netnstest.NewPair(t, c.queues)
			g := listenXDP(t, p, Config{Addr: ":0", Shards: c.shards})
			go func() { _ = g.Serve(context.Background()) }()
			sent := xdpClients(t, p, groupPort(g), 6, 5)
			snaps := g.Stats(nil)
			rx, tx := protoTotals(snaps)
			sockets := 0
			for _, s := range snaps {
				if s.Proto == "xdp" {
					sockets++
				}
			}
			if sockets != c.sockets || rx["xdp"]+rx["udp"] != uint64(sent) || tx["xdp"]+tx["udp"] != uint64(sent) {
				t.Fatalf("sent %d: %d AF_XDP sockets (want %d), received %v, sent %v", sent, sockets, c.sockets, rx, tx)
			}
			t.Logf("received by proto: %v", rx)
		})
	}
}

// TestXDPLoopAllocatesNothing drives one shard's XDP path synchronously:
// a client in A sends a batch, the shard serves its RX ring and sends the
// replies as frames, the client reads them back.
func TestXDPLoopAllocatesNothing(t *testing.T) {
	const perStep = 32
	p := netnstest.NewPair(t, 1)
	g := listenXDP(t, p, Config{Addr: ":0", Shards: 1, Batch: perStep, NewHandler: func(int) packet.Handler { return packet.Echo{} }})
	s := g.shards[0]
	x := s.xdp[0]
	var client *net.UDPConn
	var err error
	to := netip.AddrPortFrom(p.B4, groupPort(g))
	p.A.Run(t, func() { client, err = net.ListenUDP("udp4", nil) })
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	unused := make([]rxMsg, perStep)
	for i := range unused {
		unused[i].buf = make([]byte, 1)
	}
	crc, _ := client.SyscallConn()
	tx, err := newMmsgConn(crc, client.LocalAddr(), unused, false)
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]packet.Reply, perStep)
	for i := range batch {
		batch[i] = packet.Reply{Data: make([]byte, 64), Dst: to}
	}
	fds := []unix.PollFd{{Fd: int32(x.sock.FD()), Events: unix.POLLIN}}
	buf := make([]byte, 2048)
	step := func() {
		if failed, err := tx.writeBatch(batch, nil); failed != 0 || err != nil {
			t.Fatalf("client: %d of %d not sent: %v", failed, perStep, err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for got := 0; got < perStep; {
			if time.Now().After(deadline) {
				t.Fatalf("the shard got %d of %d datagrams in 30 s", got, perStep)
			}
			_, _ = unix.Poll(fds, 100)
			got += s.serveXDP(x)
		}
		for range perStep {
			_ = client.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, _, err := client.ReadFromUDPAddrPort(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	step()
	if allocs := testing.AllocsPerRun(20, step); allocs != 0 {
		t.Fatalf("%v allocations per batch of %d datagrams over AF_XDP, want 0", allocs, perStep)
	}
	if c := x.ctr.Load(); c.RxPackets != 22*perStep || c.TxPackets != c.RxPackets {
		t.Fatalf("counters after the run: %+v", c)
	}
}

// TestXDPReplyOverMTU: a reply longer than the interface's MTU cannot go
// as one frame; it leaves by the shard's UDP socket, which fragments it,
// for a request that came by AF_XDP, IPv4 and IPv6.
func TestXDPReplyOverMTU(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	g := serveBigReplies(t, p, 3000)
	rx, tx := protoTotals(g.Stats(nil))
	if rx["xdp"] != 2 || tx["xdp"] != 2 || rx["udp"] != 0 {
		t.Fatalf("received %v, sent %v by proto; want both requests by AF_XDP", rx, tx)
	}
}

// TestXDPUpgradeLosesNothing hands a serving group's sockets and its XDP
// attachment to a new group (as an upgrade does: Files, then Listen with
// Inherit and Upgrade, then Handoff) while a client in A keeps 8 requests
// in flight: every request gets its reply, the new group swapped its
// program into the same attachment (no moment without one), and the two
// groups' counters add up to what was sent.
func TestXDPUpgradeLosesNothing(t *testing.T) {
	p := netnstest.NewPair(t, 2)
	cfg := Config{Addr: ":0", Shards: 2}
	old := listenXDP(t, p, cfg)
	go func() { _ = old.Serve(context.Background()) }()
	port := groupPort(old)
	var conns []*net.UDPConn
	for i := 0; i < 8; i++ {
		var c *net.UDPConn
		var err error
		p.A.Run(t, func() { c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.B4, port))) })
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// Each connection sends a datagram and waits for its reply before the
	// next (a lost one fails after 30 s), until stop; bounded by count.
	stop := make(chan struct{})
	sent := make(chan int, len(conns))
	for i, c := range conns {
		go func() {
			buf := make([]byte, 64)
			n := 0
			defer func() { sent <- n }()
			for ; n < 200000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				msg := fmt.Appendf(nil, "conn %d request %d", i, n)
				if _, err := c.Write(msg); err != nil {
					t.Error(err)
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				m, err := c.Read(buf)
				if err != nil || string(buf[:m]) != string(msg) {
					t.Errorf("conn %d request %d: reply %q, %v (lost in the upgrade)", i, n, buf[:max(m, 0)], err)
					return
				}
			}
		}()
	}
	waitRx := func(g *Group, n uint64) {
		t.Helper()
		waitFor(t, fmt.Sprintf("the group to serve %d datagrams by AF_XDP", n), func() bool { rx, _ := protoTotals(g.Stats(nil)); return rx["xdp"] >= n })
	}
	waitRx(old, 200)
	files, err := old.Files()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr, cfg.Inherit, cfg.Upgrade, cfg.XDP = fmt.Sprintf(":%d", port), files, true, []string{p.DevB}
	var next *Group
	p.B.Run(t, func() { next, err = Listen(cfg) })
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if len(next.xdp) != 1 || next.xdp[0].prog.Mode() != "inherited" {
		t.Fatalf("the new group's XDP interfaces %v: want one, its program swapped into the inherited attachment", next.xdp)
	}
	if mode := next.xdp[0].prog.Mode(); mode != "inherited" {
		t.Fatalf("the new group's program is %s, want it swapped into the inherited attachment", mode)
	}
	go func() { _ = next.Serve(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := old.Handoff(ctx); err != nil {
		t.Fatal(err)
	}
	waitRx(next, 200)
	close(stop)
	total := 0
	for range conns {
		total += <-sent
	}
	oldRx, oldTx := protoTotals(old.Stats(nil))
	newRx, newTx := protoTotals(next.Stats(nil))
	if got := oldRx["xdp"] + oldRx["udp"] + newRx["xdp"] + newRx["udp"]; got != uint64(total) ||
		oldTx["xdp"]+oldTx["udp"]+newTx["xdp"]+newTx["udp"] != uint64(total) {
		t.Fatalf("sent %d: old group received %v (sent %v), new %v (sent %v)", total, oldRx, oldTx, newRx, newTx)
	}
	if out := p.B.IP(t, "link", "show", p.DevB); !strings.Contains(out, "xdp") {
		t.Fatalf("no program attached after the handoff:\n%s", out)
	}
	t.Logf("upgrade under load: %d requests answered; old group %v, new group %v", total, oldRx, newRx)
}
