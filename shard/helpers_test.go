package shard

// The helpers the tests of package shard share: starting a group, client
// sockets, exchanging and sending datagrams, waiting for a state, summing
// counters, and driving one shard's loop on the test goroutine.
// cmd/internal/testkit holds the same kind of helpers for the commands:
// Go's internal rule keeps it out of shard's reach, and a helper package
// that imported shard could not serve shard's own tests (an import cycle).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/packet"
)

// startGroup listens on addr, serves in the background and shuts the group
// down at the end of the test.
func startGroup(t *testing.T, cfg Config) *Group {
	t.Helper()
	g, err := Listen(cfg)
	if err != nil {
		t.Fatalf("Listen(%q): %v", cfg.Addr, err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		// ErrGroupClosed: Shutdown won the race against a Serve not yet started.
		if err := <-served; err != nil && !errors.Is(err, ErrGroupClosed) {
			t.Errorf("Serve returned %v after Shutdown", err)
		}
	})
	return g
}

// recorder is a handler that notes every packet it is handed (any
// goroutine may ask what it saw).
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) ServePacket(_ *packet.ReplyWriter, p *packet.Packet) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, string(p.Data))
	return nil
}

// handled is the packets' data seen so far, in order.
func (r *recorder) handled() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// discardHandler is a Config.NewHandler whose shards drop every datagram.
func discardHandler(int) packet.Handler { return packet.Discard{} }

func groupPort(g *Group) uint16 { return g.Info().Bound.Port() }

// sumStats adds up every shard's counters.
func sumStats(g *Group) (total metrics.Counts, perShard []metrics.Snapshot) {
	perShard = g.Stats(nil)
	for _, s := range perShard {
		total.RxPackets += s.RxPackets
		total.RxBytes += s.RxBytes
		total.TxPackets += s.TxPackets
		total.TxBytes += s.TxBytes
		total.Truncated += s.Truncated
		total.HandlerErrors += s.HandlerErrors
		total.SendErrors += s.SendErrors
	}
	return total, perShard
}

// waitTimeout bounds every wait for a state: far longer than anything takes
// on an idle machine, so that only a hang, never a loaded CI machine,
// reaches it.
const waitTimeout = 60 * time.Second

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exchange sends payload from a fresh socket and returns the reply and the
// address it came from.
func exchange(t *testing.T, network string, to netip.AddrPort, payload []byte) ([]byte, netip.AddrPort) {
	t.Helper()
	c, err := net.ListenUDP(network, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 70000)
	// Resent every second, until a deadline only a hang reaches.
	for deadline := time.Now().Add(waitTimeout); time.Now().Before(deadline); {
		if _, err := c.WriteToUDPAddrPort(payload, to); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err == nil {
			return buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		}
	}
	t.Fatalf("no reply from %v within %v", to, waitTimeout)
	return nil, netip.AddrPort{}
}

func tcpAddr(g *Group) string { return fmt.Sprintf("127.0.0.1:%d", groupPort(g)) }

func tcpStats(g *Group) (total metrics.Counts, per []metrics.Snapshot) {
	for _, s := range g.Stats(nil) {
		if s.Proto != "tcp" {
			continue
		}
		per = append(per, s)
		total.Accepted += s.Accepted
		total.RxPackets += s.RxPackets
		total.RxBytes += s.RxBytes
		total.TxBytes += s.TxBytes
		total.DiscardedBytes += s.DiscardedBytes
		for i, n := range s.Closed {
			total.Closed[i] += n
		}
	}
	return total, per
}

func shapeOf(loop bool) TCPShape {
	if loop {
		return TCPShapeLoop
	}
	return TCPShapeGoroutines
}

// waitDelivered waits until the client's bytes have reached the server's
// socket (nothing unacknowledged) and the shard has accepted the
// connection: a connection still in the listener's backlog when the stop
// closes the listener is reset by the kernel, which is not what these
// tests are about. Where the queue cannot be read it does not wait for it.
func waitDelivered(t *testing.T, g *Group, c net.Conn) {
	t.Helper()
	waitFor(t, "the connection accepted", func() bool {
		total, _ := tcpStats(g)
		return total.Accepted >= 1
	})
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the requests delivered", func() bool {
		var n int
		var ok bool
		_ = rc.Control(func(fd uintptr) { n, ok = outq(int(fd)) })
		return !ok || n == 0
	})
}

// serveGroup listens with cfg and serves in the background: the test stops
// the group itself, and Serve's result arrives on served.
func serveGroup(t *testing.T, cfg Config) (g *Group, served chan error) {
	t.Helper()
	g, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served = make(chan error, 1)
	go func() { served <- g.Serve(context.Background()) }()
	return g, served
}

// udpClient is a UDP socket on an ephemeral port, closed at the end of the
// test.
func udpClient(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", nil)
	return closedAtEnd(t, c, err)
}

// dialTCP connects to addr; the connection is closed at the end of the
// test if the test has not closed it before.
func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	return closedAtEnd(t, c, err)
}

// closedAtEnd returns c, to be closed at the end of the test; err fails
// the test.
func closedAtEnd[C io.Closer](t *testing.T, c C, err error) C {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// stopWhenDelivered waits until what the client c wrote has reached g
// (waitDelivered), shuts g down and waits for its Serve to return on done.
func stopWhenDelivered(t *testing.T, g *Group, c net.Conn, done chan error) {
	t.Helper()
	waitDelivered(t, g, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
}

// upgradeConfig is cfg for a group that takes over old's sockets, as the
// new process of an upgrade does.
func upgradeConfig(t *testing.T, cfg Config, old *Group) Config {
	t.Helper()
	files, err := old.Files()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = old.Addr().String()
	cfg.Inherit = files
	cfg.Upgrade = true
	return cfg
}

// eachIO runs f as a subtest on the batched receive path and on the
// portable one (noBatchIO).
func eachIO(t *testing.T, f func(t *testing.T, noBatch bool)) {
	for _, noBatch := range []bool{false, true} {
		name := "batched"
		if noBatch {
			name = "portable"
		}
		t.Run(name, func(t *testing.T) { f(t, noBatch) })
	}
}

// driveShard listens with cfg (one UDP shard on 127.0.0.1:0), puts what
// wrap makes of the shard's socket in its place, and drives the shard's
// loop on the test goroutine (nothing else reads the socket): serve sends
// payloads from the client c and serves batches until all are read.
func driveShard(t *testing.T, cfg Config, wrap func(s *shard) batchConn) (s *shard, c *net.UDPConn, serve func(payloads ...string)) {
	t.Helper()
	cfg.Addr, cfg.Shards = "127.0.0.1:0", 1
	g, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	s = g.shards[0]
	s.bc = wrap(s)
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
	c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	serve = func(payloads ...string) {
		t.Helper()
		for _, p := range payloads {
			if _, err := c.WriteToUDPAddrPort([]byte(p), to); err != nil {
				t.Fatal(err)
			}
		}
		for got := 0; got < len(payloads); {
			n, err := s.bc.readBatch(s.msgs)
			if err != nil {
				t.Fatal(err)
			}
			s.serveBatch(n)
			got += n
		}
	}
	return s, c, serve
}

// sendFrom sends n datagrams from one socket (one flow), optionally from a
// thread pinned to cpu so that loopback delivery runs there.
func sendFrom(t *testing.T, to netip.AddrPort, n, cpu int) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // this thread dies with the goroutine: its mask never leaks
		if cpu >= 0 {
			if err := pinThread(cpu); err != nil {
				done <- err
				return
			}
		}
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		for i := 0; i < n; i++ {
			if _, err := c.WriteToUDPAddrPort([]byte("steer"), to); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// perShardRx is what each UDP shard received or saw the kernel drop.
func perShardRx(g *Group) []uint64 {
	var rx []uint64
	for _, s := range g.Stats(nil) {
		if s.Proto == "udp" {
			rx = append(rx, s.RxPackets+s.KernelDrops)
		}
	}
	return rx
}

// total adds up v.
func total(v []uint64) (t uint64) {
	for _, x := range v {
		t += x
	}
	return t
}
