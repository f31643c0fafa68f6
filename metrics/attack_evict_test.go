//go:build unix

package metrics

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// loopback returns 127.0.0.n, a source address of its own on loopback: it
// models a client on another host.
func loopback(n int) net.IP { return net.IPv4(127, 0, 0, byte(n)) }

// dialFrom dials addr from the source address src.
func dialFrom(src net.IP, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
	return d.Dial("tcp", addr)
}

// scrapeFrom fetches /metrics once, on a new connection from src, with no
// retry.
func scrapeFrom(src net.IP, addr string) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext:       func(ctx context.Context, nw, a string) (net.Conn, error) { return d.DialContext(ctx, nw, a) },
	}}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || !strings.Contains(string(b), "shardd_test_up 1") {
		return fmt.Errorf("%s: %.100q", resp.Status, b)
	}
	return nil
}

// mostPerSource is the most connections from one source address the
// server holds.
func mostPerSource(s *Server) int {
	by := map[string]int{}
	s.mu.Lock()
	for tc := range s.conns {
		if a, ok := tc.RemoteAddr().(*net.TCPAddr); ok {
			by[a.IP.String()]++
		}
	}
	s.mu.Unlock()
	most := 0
	for _, n := range by {
		most = max(most, n)
	}
	return most
}

// idleFlood opens a connection that sends nothing every `every`, from the
// sources 127.0.0.first.. (round robin over nsrc of them), and holds them all
// until stop is called; at most max connections, and none after 60 s.
func idleFlood(t *testing.T, addr string, first, nsrc int, every time.Duration, max int) (opened func() int64, stop func()) {
	var n atomic.Int64
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		end := time.Now().Add(60 * time.Second)
		for i := 0; i < max && time.Now().Before(end); i++ {
			if c, err := dialFrom(loopback(first+i%nsrc), addr); err == nil {
				held = append(held, c)
				n.Add(1)
			}
			select {
			case <-quit:
				return
			case <-time.After(every):
			}
		}
		<-quit
	}()
	return n.Load, func() { close(quit); <-done }
}

// TestAttackIdleConnectionFlood: a client that opens an idle connection
// every 5 ms keeps every slot younger than EvictAfter. Each of 20 scrapes,
// made once with no retry during the flood, succeeds: a connection without
// a request gives its slot to a new one at once. Run from one source address
// (the per-source cap keeps it to MaxPerSource slots) and from ten.
func TestAttackIdleConnectionFlood(t *testing.T) {
	for _, nsrc := range []int{1, 10} {
		t.Run(fmt.Sprintf("sources=%d", nsrc), func(t *testing.T) {
			s, _ := startServer(t, nil, testLimits)
			peak, perSrc := watchPeak(s.Conns), watchPeak(func() int { return mostPerSource(s) })
			opened, stop := idleFlood(t, s.Addr().String(), 2, nsrc, 5*time.Millisecond, 20000)
			// The flood has filled what it can before the first scrape.
			want := testLimits.MaxConns
			if nsrc == 1 {
				want = DefaultLimits().MaxPerSource
			}
			waitFor(t, "the flood to hold its slots", func() bool { return s.Conns() >= want && opened() > int64(4*testLimits.MaxConns) })
			const scrapes = 20
			ok := 0
			start := time.Now()
			for i := 0; i < scrapes; i++ {
				if err := scrapeFrom(loopback(1), s.Addr().String()); err != nil {
					t.Errorf("scrape %d during the flood: %v", i, err)
				} else {
					ok++
				}
				time.Sleep(15 * time.Millisecond) // spread the scrapes over the flood
			}
			took := time.Since(start)
			stop()
			max, maxSrc := peak(), perSrc()
			if ok != scrapes {
				t.Errorf("%d of %d scrapes succeeded during the flood", ok, scrapes)
			}
			if max > testLimits.MaxConns {
				t.Errorf("the server held %d connections at once; the cap is %d", max, testLimits.MaxConns)
			}
			if maxSrc > DefaultLimits().MaxPerSource {
				t.Errorf("the server held %d connections of one source at once; the cap is %d", maxSrc, DefaultLimits().MaxPerSource)
			}
			t.Logf("attack: idle connection every 5 ms from %d source(s), %d opened: %d of %d scrapes succeeded first time (in %v); held at most %d (cap %d), at most %d of one source (cap %d); evicted %v, full %v",
				nsrc, opened(), ok, scrapes, took.Round(time.Millisecond), max, testLimits.MaxConns, maxSrc, DefaultLimits().MaxPerSource,
				closedCount(s, closedEvicted), closedCount(s, closedFull))
		})
	}
}

// smallSndbufListener gives each accepted connection a small send buffer,
// so that a reply of a few hundred kB fills it as a large registry's reply
// fills the default one.
type smallSndbufListener struct{ net.Listener }

func (l smallSndbufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		if rc, e := c.(*net.TCPConn).SyscallConn(); e == nil {
			_ = rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 8<<10) })
		}
	}
	return c, err
}

// TestAttackNonReadingScrapers: MaxConns clients (each from its own source
// address) request /metrics and never read the reply, so every slot is
// held by a request whose write has stalled. The write timeout is long
// (60 s); each of 10 scrapes still succeeds within 10 s: a connection whose
// write has stalled for EvictAfter gives its slot to a new one.
func TestAttackNonReadingScrapers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := testLimits
	lim.WriteTimeout = 60 * time.Second
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shardd_test_up", Help: "1."}, func() float64 { return 1 }))
	big := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shardd_test_big", Help: "A large reply."}, []string{"i", "pad"})
	pad := strings.Repeat("x", 200)
	for i := 0; i < 2000; i++ { // about 450 kB of text
		big.WithLabelValues(fmt.Sprint(i), pad).Set(1)
	}
	reg.MustRegister(big)
	s := NewServer(smallSndbufListener{ln}, reg, lim, zap.NewNop())
	reg.MustRegister(s)
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	defer func() {
		_ = s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	addr := s.Addr().String()

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// fill tops the slots up with non-reading clients, each from a source
	// address of its own, until every slot is held by a request being
	// answered. It tops up again while it waits: a slot counted when it
	// looked (the last scrape's connection, still closing) may free up
	// after, and waiting for the count alone would then wait forever.
	src := 2
	topUp := func() {
		for n := s.Conns(); n < lim.MaxConns; n++ {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: loopback(src)}, Timeout: 10 * time.Second,
				Control: func(_, _ string, rc syscall.RawConn) error {
					return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
				}}
			src++
			c, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
			if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill := func() {
		waitFor(t, "every slot to be held by an active request", func() bool {
			topUp()
			s.mu.Lock()
			defer s.mu.Unlock()
			active := 0
			for _, in := range s.conns {
				if in.state == http.StateActive {
					active++
				}
			}
			return active == lim.MaxConns
		})
	}
	const scrapes = 10
	var worst time.Duration
	for i := 0; i < scrapes; i++ {
		fill()
		start := time.Now()
		var err error
		for err = scrapeFrom(loopback(1), addr); err != nil && time.Since(start) < 10*time.Second; err = scrapeFrom(loopback(1), addr) {
			time.Sleep(10 * time.Millisecond) // a refused scraper retries
		}
		if err != nil {
			t.Fatalf("scrape %d: none succeeded within 10 s while %d non-reading clients held the slots: %v", i, lim.MaxConns, err)
		}
		worst = max(worst, time.Since(start))
	}
	if ev := closedCount(s, closedEvicted); ev < 1 {
		t.Errorf("%v connections evicted; the scrapes cannot have got a slot otherwise", ev)
	}
	t.Logf("attack: %d clients that request /metrics and never read (write timeout %v): %d of %d scrapes succeeded, the slowest after %v (evict after %v); evicted %v, full %v",
		lim.MaxConns, lim.WriteTimeout, scrapes, scrapes, worst.Round(time.Millisecond), lim.EvictAfter, closedCount(s, closedEvicted), closedCount(s, closedFull))
}
