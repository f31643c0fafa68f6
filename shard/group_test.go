package shard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardd/shardd/packet"
)

func TestEchoByteExact(t *testing.T) {
	for _, tc := range []struct {
		name, listen, network string
		to                    string
		noBatchIO             bool
	}{
		{"ipv4", "127.0.0.1:0", "udp4", "127.0.0.1", false},
		{"ipv6", "[::1]:0", "udp6", "::1", false},
		{"dualstack-v4", ":0", "udp4", "127.0.0.1", false},
		{"dualstack-v6", ":0", "udp6", "::1", false},
		{"portable-ipv4", "127.0.0.1:0", "udp4", "127.0.0.1", true},
		{"portable-dualstack-v6", ":0", "udp6", "::1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGroup(t, Config{Addr: tc.listen, Shards: 2, noBatchIO: tc.noBatchIO})
			to := netip.AddrPortFrom(netip.MustParseAddr(tc.to), groupPort(g))
			for _, size := range []int{0, 1, 64, 1500, 9000, 65507} {
				if tc.network == "udp6" && size == 65507 {
					size = 65527 - 20 // stay clear of the IPv6 jumbogram edge on loopback
				}
				payload := make([]byte, size)
				for i := range payload {
					payload[i] = byte(i*7 + size)
				}
				got, from := exchange(t, tc.network, to, payload)
				if !bytes.Equal(got, payload) {
					t.Fatalf("size %d: echo differs (got %d bytes)", size, len(got))
				}
				if from != to {
					t.Fatalf("size %d: reply came from %v, want %v", size, from, to)
				}
			}
		})
	}
}

// TestReplyLeavesFromDestination checks IP_PKTINFO handling: a wildcard
// listener answers a datagram sent to 127.0.0.2 from 127.0.0.2, not from
// whatever address the route would pick.
func TestReplyLeavesFromDestination(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", ":0"} {
		t.Run(listen, func(t *testing.T) {
			g := startGroup(t, Config{Addr: listen, Shards: 1})
			if !g.Info().PktInfo {
				t.Fatal("wildcard listener without PktInfo")
			}
			for _, dst := range []string{"127.0.0.1", "127.0.0.2", "127.1.2.3"} {
				to := netip.AddrPortFrom(netip.MustParseAddr(dst), groupPort(g))
				got, from := exchange(t, "udp4", to, []byte("where from?"))
				if string(got) != "where from?" || from != to {
					t.Fatalf("sent to %v: reply %q from %v", to, got, from)
				}
			}
		})
	}
}

// TestEveryShardGetsTraffic sends from 64 source ports and expects the
// kernel's 4-tuple hash to give every shard some, and the counters to add up
// to exactly what was sent.
func TestEveryShardGetsTraffic(t *testing.T) {
	const flows, perFlow = 64, 4
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 3, NewHandler: func(int) packet.Handler { return packet.Discard{} }})
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
	payload := []byte("0123456789abcdef")
	for f := 0; f < flows; f++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < perFlow; i++ {
			if _, err := c.WriteToUDPAddrPort(payload, to); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
	want := uint64(flows * perFlow)
	waitFor(t, "all datagrams counted", func() bool { total, _ := sumStats(g); return total.RxPackets >= want })
	total, per := sumStats(g)
	if total.RxPackets != want || total.RxBytes != want*uint64(len(payload)) {
		t.Fatalf("rx %d packets %d bytes, want %d and %d", total.RxPackets, total.RxBytes, want, want*uint64(len(payload)))
	}
	if total.TxPackets != 0 || total.HandlerErrors != 0 || total.Truncated != 0 {
		t.Fatalf("unexpected counters: %+v", total)
	}
	for _, s := range per {
		if s.RxPackets == 0 {
			t.Errorf("shard %d got no traffic from %d flows: %+v", s.Shard, flows, per)
		}
		if s.RxPackets%perFlow != 0 {
			t.Errorf("shard %d got %d datagrams: a flow was split across shards", s.Shard, s.RxPackets)
		}
		var batched uint64
		for _, n := range s.BatchSizes {
			batched += n
		}
		if batched != s.Batches || s.Batches == 0 {
			t.Errorf("shard %d: %d batches but histogram holds %d", s.Shard, s.Batches, batched)
		}
	}
}

func TestEchoCountersMatch(t *testing.T) {
	g := startGroup(t, Config{Addr: "[::1]:0", Shards: 2})
	to := netip.AddrPortFrom(netip.IPv6Loopback(), groupPort(g))
	var sent, bytesSent uint64
	for i := 0; i < 50; i++ {
		p := []byte(fmt.Sprintf("message %d", i))
		got, _ := exchange(t, "udp6", to, p)
		if !bytes.Equal(got, p) {
			t.Fatalf("echo %q != %q", got, p)
		}
		sent++
		bytesSent += uint64(len(p))
	}
	waitFor(t, "tx counters", func() bool { total, _ := sumStats(g); return total.TxPackets >= sent })
	total, _ := sumStats(g)
	if total.RxPackets != sent || total.TxPackets != sent || total.RxBytes != bytesSent || total.TxBytes != bytesSent {
		t.Fatalf("counters %+v, want %d packets / %d bytes each way", total, sent, bytesSent)
	}
}

func TestTruncatedIsCountedNotHandled(t *testing.T) {
	for _, noBatch := range []bool{false, true} {
		t.Run(fmt.Sprintf("portable=%v", noBatch), func(t *testing.T) {
			rec := &recorder{}
			g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, MaxPacket: 100, noBatchIO: noBatch,
				NewHandler: func(int) packet.Handler { return rec }})
			to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
			c := udpClient(t)
			for _, size := range []int{100, 101, 5000, 99} {
				if _, err := c.WriteToUDPAddrPort(make([]byte, size), to); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "4 datagrams", func() bool { total, _ := sumStats(g); return total.RxPackets == 4 })
			total, _ := sumStats(g)
			if total.Truncated != 2 {
				t.Fatalf("truncated = %d, want 2", total.Truncated)
			}
			var handled []int
			for _, d := range rec.handled() {
				handled = append(handled, len(d))
			}
			if fmt.Sprint(handled) != "[100 99]" {
				t.Fatalf("handler saw lengths %v, want [100 99]", handled)
			}
			if !noBatch && total.RxBytes != 100+101+5000+99 {
				t.Fatalf("rx bytes %d: the batched path must count the real length of truncated datagrams", total.RxBytes)
			}
		})
	}
}

func TestHandlerErrorsAndPanicsAreCounted(t *testing.T) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, NewHandler: func(int) packet.Handler {
		return packet.HandlerFunc(func(w *packet.ReplyWriter, p *packet.Packet) error {
			switch string(p.Data) {
			case "panic":
				panic("handler bug")
			case "error":
				return errors.New("handler error")
			}
			_, err := w.Write(p.Data)
			return err
		})
	}})
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
	c := udpClient(t)
	for _, m := range []string{"panic", "error", "panic", "ok"} {
		if _, err := c.WriteToUDPAddrPort([]byte(m), to); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 100)
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "ok" {
		t.Fatalf("after panics the shard must keep serving: got %q, %v", buf[:n], err)
	}
	// Counters are published field by field once per batch: wait for the
	// whole set rather than for one of them.
	deadline := time.Now().Add(waitTimeout)
	total, _ := sumStats(g)
	for (total.RxPackets != 4 || total.HandlerErrors != 3 || total.TxPackets != 1) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		total, _ = sumStats(g)
	}
	if total.RxPackets != 4 || total.HandlerErrors != 3 || total.TxPackets != 1 {
		t.Fatalf("rx %d (want 4), handler errors %d (want 3), tx %d (want 1)", total.RxPackets, total.HandlerErrors, total.TxPackets)
	}
}

// TestShutdownServesQueued fills the socket before Serve, then shuts down at
// once: every datagram already queued must still be handled.
func TestShutdownServesQueued(t *testing.T) {
	g, err := Listen(Config{Addr: "127.0.0.1:0", Shards: 2, NewHandler: func(int) packet.Handler { return packet.Discard{} }})
	if err != nil {
		t.Fatal(err)
	}
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
	const n = 2000
	for f := 0; f < 20; f++ {
		c, err := net.ListenUDP("udp4", nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n/20; i++ {
			if _, err := c.WriteToUDPAddrPort([]byte("queued"), to); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Serve starts and stops at once: only draining remains
	if err := g.Serve(ctx); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	total, per := sumStats(g)
	var drops uint64
	for _, s := range per {
		drops += s.KernelDrops
	}
	if total.RxPackets+drops != n || drops != 0 {
		t.Fatalf("handled %d, kernel drops %d, want all %d handled", total.RxPackets, drops, n)
	}
}

func TestCloseAndShutdownContract(t *testing.T) {
	g, served := serveGroup(t, Config{Addr: "127.0.0.1:0", Shards: 2})
	// Close while Serve runs (a Close before it would make Serve return
	// ErrGroupClosed, also correct, but not the case under test).
	waitFor(t, "Serve to start", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.served
	})
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve after Close returned %v, want net.ErrClosed", err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := g.Serve(context.Background()); !errors.Is(err, ErrGroupClosed) {
		t.Fatalf("Serve on a closed group returned %v", err)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown after Close: %v", err)
	}
}

func TestPortZeroSharedByAllShards(t *testing.T) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 4})
	port := groupPort(g)
	if port == 0 {
		t.Fatal("port 0 not resolved")
	}
	for _, s := range g.shards {
		if got := s.conn.LocalAddr().(*net.UDPAddr).Port; got != int(port) {
			t.Fatalf("shard %d bound port %d, group port %d", s.id, got, port)
		}
	}
}

func TestSeveralAddressesOnOnePort(t *testing.T) {
	a := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, NewHandler: func(int) packet.Handler {
		return packet.HandlerFunc(func(w *packet.ReplyWriter, p *packet.Packet) error { _, err := w.Write([]byte("A")); return err })
	}})
	port := groupPort(a)
	b := startGroup(t, Config{Addr: fmt.Sprintf("127.0.0.2:%d", port), Shards: 1, NewHandler: func(int) packet.Handler {
		return packet.HandlerFunc(func(w *packet.ReplyWriter, p *packet.Packet) error { _, err := w.Write([]byte("B")); return err })
	}})
	_ = b
	for addr, want := range map[string]string{"127.0.0.1": "A", "127.0.0.2": "B"} {
		got, _ := exchange(t, "udp4", netip.AddrPortFrom(netip.MustParseAddr(addr), port), []byte("?"))
		if string(got) != want {
			t.Errorf("%s answered %q, want %q", addr, got, want)
		}
	}
}

func TestPinnedShards(t *testing.T) {
	cpus, err := allowedCPUs()
	if err != nil {
		t.Skip(err)
	}
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: len(cpus), Pin: true})
	if fmt.Sprint(g.Info().CPUs) != fmt.Sprint(cpus) {
		t.Fatalf("pinned to %v, allowed %v", g.Info().CPUs, cpus)
	}
	got, _ := exchange(t, "udp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g)), []byte("pinned"))
	if string(got) != "pinned" {
		t.Fatalf("got %q", got)
	}
	// The kernel's view: one thread of this process allowed on exactly each
	// CPU (each shard pins itself when its goroutine starts: poll for it).
	if len(cpus) > 1 {
		pinnedTo := func() map[string]int {
			pinned := map[string]int{}
			tasks, _ := filepath.Glob("/proc/self/task/*/status")
			for _, st := range tasks {
				b, err := os.ReadFile(st)
				if err != nil {
					continue
				}
				for _, line := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
						pinned[strings.TrimSpace(v)]++
					}
				}
			}
			return pinned
		}
		waitFor(t, "a thread pinned to each CPU", func() bool {
			p := pinnedTo()
			for _, c := range cpus {
				if p[fmt.Sprint(c)] < 1 {
					return false
				}
			}
			return true
		})
	}
	_, err = Listen(Config{Addr: "127.0.0.1:0", Shards: len(cpus) + 1, Pin: true})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "Shards" {
		t.Fatalf("more shards than CPUs with Pin: %v", err)
	}
}

// TestFenceCountsLateArrivals checks the stop fence on its own: after
// attachDropAll, arrivals are kernel drops, counted, and never received.
func TestFenceCountsLateArrivals(t *testing.T) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, NewHandler: func(int) packet.Handler { return packet.Discard{} }})
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
	c := udpClient(t)
	send := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := c.WriteToUDPAddrPort([]byte("x"), to); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(50)
	waitFor(t, "50 received", func() bool { total, _ := sumStats(g); return total.RxPackets == 50 })
	if err := attachDropAll(g.shards[0].rc); err != nil {
		t.Fatal(err)
	}
	send(25)
	waitFor(t, "25 kernel drops", func() bool { _, per := sumStats(g); return per[0].KernelDrops == 25 })
	if total, _ := sumStats(g); total.RxPackets != 50 {
		t.Fatalf("received %d after the fence, want 50", total.RxPackets)
	}
}

// TestShutdownUnderFloodLeavesNothingQueued stops the group while a flood
// is arriving: each socket must close with an empty queue, so every datagram
// that reached it was either received or counted as a kernel drop.
func TestShutdownUnderFloodLeavesNothingQueued(t *testing.T) {
	g, served := serveGroup(t, Config{Addr: "127.0.0.1:0", Shards: 2, NewHandler: func(int) packet.Handler { return packet.Discard{} }})
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for f := 0; f < 4; f++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.ListenUDP("udp4", nil)
			if err != nil {
				return
			}
			defer c.Close()
			// Until the stop below (bounded all the same): a flood that
			// ended on its own before a starved server counted 10000
			// would never let the wait below end.
			deadline := time.Now().Add(waitTimeout)
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				for i := 0; i < 64; i++ {
					_, _ = c.WriteToUDPAddrPort(make([]byte, 64), to)
				}
			}
		}()
	}
	waitFor(t, "the flood to arrive", func() bool { total, _ := sumStats(g); return total.RxPackets > 10000 })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	for _, s := range g.shards {
		mem := s.finalMem.Load()
		if mem == nil {
			t.Fatalf("shard %d: no final socket reading", s.id)
		}
		if mem.queued != 0 {
			t.Errorf("shard %d closed with %d bytes still queued: lost uncounted", s.id, mem.queued)
		}
	}
}

// TestServeReturnsAnEarlyShardError: shard 0 fails at once (it cannot pin
// to a CPU that does not exist); Serve must stop the others and return the
// error, not wait for shard 0's socket to close last.
func TestServeReturnsAnEarlyShardError(t *testing.T) {
	g, err := Listen(Config{Addr: "127.0.0.1:0", Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	g.shards[0].cpu = 4095
	done := make(chan error, 1)
	go func() { done <- g.Serve(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "pin to CPU 4095") {
			t.Fatalf("Serve returned %v, want the pin error", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Serve hung after shard 0 failed")
	}
}
