package shard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/packet"
)

// TestWriteBatchSkipsRefusedReplies sends a batch whose middle reply cannot
// be sent: it is counted as failed with its cause, and the rest still go out.
func TestWriteBatchSkipsRefusedReplies(t *testing.T) {
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	msgs := []rxMsg{{buf: make([]byte, 8)}, {buf: make([]byte, 8)}, {buf: make([]byte, 8)}}
	src, _ := srv.SyscallConn()
	m, err := newMmsgConn(src, srv.LocalAddr(), msgs, false)
	if err != nil {
		t.Fatal(err)
	}
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	replies := []packet.Reply{
		{Data: []byte("one"), Dst: to},
		{Data: []byte("bad"), Dst: netip.MustParseAddrPort("[2001:db8::1]:53")}, // IPv6 on an IPv4 socket
		{Data: []byte("bad"), Dst: netip.MustParseAddrPort("127.0.0.1:0")},
		{Data: []byte("two"), Dst: to},
	}
	failed, err := m.writeBatch(replies, nil)
	if failed != 2 || !errors.Is(err, errBadDestination) {
		t.Fatalf("failed %d, err %v; want 2, errBadDestination", failed, err)
	}
	buf := make([]byte, 8)
	for _, want := range []string{"one", "two"} {
		_ = peer.SetReadDeadline(time.Now().Add(waitTimeout))
		n, _, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("got %q %v, want %q", buf[:n], err, want)
		}
	}
}

// TestBroadcastGetsAnswered sends to the loopback broadcast address: the
// reply must leave from a unicast address (ipi_spec_dst), on an IPv4 and on
// a dual-stack wildcard listener alike.
func TestBroadcastGetsAnswered(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", ":0"} {
		t.Run(listen, func(t *testing.T) {
			g := startGroup(t, Config{Addr: listen, Shards: 1})
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rc, _ := c.SyscallConn()
			_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1) })
			to := netip.AddrPortFrom(netip.MustParseAddr("127.255.255.255"), groupPort(g))
			if _, err := c.WriteToUDPAddrPort([]byte("anyone?"), to); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
			buf := make([]byte, 16)
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil || string(buf[:n]) != "anyone?" {
				t.Fatalf("no answer to a broadcast: %q %v (send errors: %+v)", buf[:n], err, g.Stats(nil))
			}
			if a := from.Addr().Unmap(); a.String() == "127.255.255.255" || !a.IsLoopback() {
				t.Fatalf("answer came from %v", from)
			}
		})
	}
}

// TestCloseIsImmediate: the shards sleep in recvmmsg outside the netpoller;
// Close must still end them at once, so that when it returns the port is
// free and no handler runs any more.
func TestCloseIsImmediate(t *testing.T) {
	for round := 0; round < 20; round++ {
		var calls atomic.Int64
		var closed atomic.Bool
		var late atomic.Int64
		g, err := Listen(Config{Addr: "127.0.0.1:0", Shards: 2, NewHandler: func(int) packet.Handler {
			return packet.HandlerFunc(func(*packet.ReplyWriter, *packet.Packet) error {
				calls.Add(1)
				if closed.Load() {
					late.Add(1)
				}
				return nil
			})
		}})
		if err != nil {
			t.Fatal(err)
		}
		port := groupPort(g)
		served := make(chan error, 1)
		go func() { served <- g.Serve(context.Background()) }()
		to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
		c, err := net.ListenUDP("udp4", nil)
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(waitTimeout); calls.Load() == 0; time.Sleep(time.Millisecond) { // serving
			if time.Now().After(deadline) {
				t.Fatalf("round %d: nothing served within %v", round, waitTimeout)
			}
			_, _ = c.WriteToUDPAddrPort([]byte("x"), to)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		closed.Store(true)
		for i := 0; i < 5; i++ {
			_, _ = c.WriteToUDPAddrPort([]byte("after"), to)
		}
		c.Close()
		// Without SO_REUSEPORT this bind fails while any shard socket lives.
		l, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(to))
		if err != nil {
			t.Fatalf("round %d: the port is still bound after Close returned: %v", round, err)
		}
		l.Close()
		if n := late.Load(); n != 0 {
			t.Fatalf("round %d: %d handler calls after Close returned", round, n)
		}
		if err := <-served; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve after Close: %v", err)
		}
	}
}

// TestIdleStopIsPrompt: a stop interrupts the shard's blocking wait rather
// than letting it run out its 50 ms timeout, so a short --drain-timeout does
// not cut an idle stop. Checked by how the waits ended, not by the clock:
// a signal that lands just before the thread enters recvmmsg is missed (and
// the timeout covers it), so most rounds, not all, must show the interrupt.
func TestIdleStopIsPrompt(t *testing.T) {
	const rounds = 20
	interrupted := 0
	for round := 0; round < rounds; round++ {
		g, err := Listen(Config{Addr: "127.0.0.1:0", Shards: 2, NewHandler: func(int) packet.Handler { return packet.Discard{} }})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = g.Serve(context.Background()) }()
		// Stop once every shard's thread sleeps in recvmmsg (the kernel
		// says so), not after a fixed 5 ms a loaded machine may not give
		// them: a stop before a shard waits has nothing to interrupt.
		waitFor(t, "every shard asleep in recvmmsg", func() bool {
			for _, s := range g.shards {
				if m, ok := s.bc.(*mmsgConn); !ok || !inRecvmmsg(m.tid.Load()) {
					return false
				}
			}
			return true
		})
		if err := g.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		all := true
		for _, s := range g.shards {
			if m, ok := s.bc.(*mmsgConn); !ok || m.interrupted.Load() == 0 {
				all = false
			}
		}
		if all {
			interrupted++
		}
	}
	t.Logf("the stop interrupted every shard's wait in %d of %d rounds", interrupted, rounds)
	if interrupted < rounds/2 {
		t.Fatalf("the stop interrupted every shard's wait in %d of %d rounds", interrupted, rounds)
	}
}

// inRecvmmsg tells whether thread tid of this process is blocked in
// recvmmsg (/proc/self/task/TID/syscall starts with the syscall number
// while the thread sleeps in a system call).
func inRecvmmsg(tid int32) bool {
	if tid == 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/syscall", tid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 0 && f[0] == strconv.Itoa(unix.SYS_RECVMMSG)
}
