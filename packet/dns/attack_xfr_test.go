//go:build unix

package dns

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// liveHeap collects garbage and returns the live heap.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestAttackXFRNonReadingClients: clients allowed to transfer ask for a
// 12 MB zone by AXFR and never read. Each transfer holds one message at a
// time (the zone's records are read in place) and ends at the write
// timeout; connections past MaxConns are closed at accept. The live heap
// must stay within a small bound per connection, far below one copy of
// the zone per client; afterwards the server transfers and answers.
func TestAttackXFRNonReadingClients(t *testing.T) {
	const records, clients, maxConns = 100_000, 48, 32
	var b strings.Builder
	b.WriteString(xfrZone(1, "192.0.2.10"))
	for i := range records {
		fmt.Fprintf(&b, "r%d TXT \"%s\"\n", i, strings.Repeat("x", 100))
	}
	file := filepath.Join(t.TempDir(), "x.test.zone")
	writeFile(t, file, b.String())
	s, err := NewServer([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnablePrimary(PrimaryConfig{Allow: []ACLEntry{{Prefix: netip.MustParsePrefix("127.0.0.0/8")}}}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := s.NewTransferServer(ln, TransferOptions{MaxConns: maxConns, WriteTimeout: 60 * time.Second})
	go func() { _ = ts.Serve() }()
	defer func() { _ = ts.Shutdown(t.Context()) }()
	addr := ln.Addr().String()

	base := liveHeap()
	q := new(mdns.Msg)
	q.SetAxfr("x.test.")
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	frame := append([]byte{byte(len(wire) >> 8), byte(len(wire))}, wire...)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range clients {
		c := dialSmallWindow(t, addr)
		conns = append(conns, c)
		_, _ = c.Write(frame) // a connection closed at accept may refuse it
	}
	// The transfers write until the kernel's buffers are full, then block:
	// the live heap settles at what they hold.
	for deadline := time.Now().Add(60 * time.Second); ts.ln.active.Load() != maxConns || ts.Refused() != clients-maxConns; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("connections: %d active, %d closed at accept; want %d and %d", ts.ln.active.Load(), ts.Refused(), maxConns, clients-maxConns)
		}
	}
	held, last := uint64(0), liveHeap()
	deadline := time.Now().Add(60 * time.Second)
	for {
		time.Sleep(500 * time.Millisecond)
		h := liveHeap()
		if d := int64(h) - int64(last); (d < 1<<20 && d > -1<<20) || time.Now().After(deadline) {
			held = h
			break
		}
		last = h
	}
	grown := int64(held) - int64(base)
	zoneWire := records * (len("r99999.x.test.") + 10 + 101)
	bound := int64(maxConns) * 256 << 10
	t.Logf("attack: %d non-reading AXFR clients of a %.1f MB zone (%d served at once, %d closed at accept): live heap %.1f MiB before, %+.1f MiB while the transfers are blocked (bound %.0f MiB); one zone copy per served client would be %.0f MiB",
		clients, float64(zoneWire)/1e6, maxConns, ts.Refused(), float64(base)/(1<<20), float64(grown)/(1<<20), float64(bound)/(1<<20), float64(zoneWire*maxConns)/(1<<20))
	if grown > bound {
		t.Errorf("the live heap grew %d bytes; want at most %d (256 KiB per connection)", grown, bound)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	// Each blocked transfer ends at its write timeout (or at once as the
	// client closed), counted as cut.
	want := fmt.Sprintf("x.test./axfr/cut=%d", maxConns)
	if got := waitCounts(t, s, want); got != want {
		t.Fatalf("transfers: %s, want %s", got, want)
	}
	rrs, rc, err := xfrIn(t, addr, "x.test.", false, 0, "", "")
	if err != nil || rc != mdns.RcodeSuccess || len(rrs) != records+5 {
		t.Fatalf("AXFR after the attack: %d records, rcode %d, %v", len(rrs), rc, err)
	}
}

// dialSmallWindow connects with a 4 KiB receive buffer, so the kernel
// holds little of what the server writes and its writes block early.
func dialSmallWindow(t *testing.T, addr string) net.Conn {
	t.Helper()
	dialer := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	c, err := dialer.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
