//go:build linux

package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"

	"golang.org/x/sys/unix"
)

// metricsCap is metrics.DefaultLimits().MaxConns, the cap the daemon runs
// with; fdSlack covers what the daemon opens besides: the connection
// accepted but not yet admitted, and /proc files the process collector
// reads during a scrape.
const (
	metricsCap = 16
	fdSlack    = 8
)

// reloads sends HUP and waits for the reload to be logged.
func reloads(t *testing.T, d *daemon) {
	t.Helper()
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.WaitLine(t, "zone reloaded")
}

func metricsDaemon(t *testing.T) (d *daemon, pid int, url string) {
	d, _, url = dnsDaemon(t, "--zone", "../../testdata/dns/example.com.zone")
	pid = d.Cmd.Process.Pid
	testkit.ScrapeRetry(t, url) // the process collector's first pass opens nothing more later
	return d, pid, url
}

// TestAttackMetricsIdleConnections: 1000 connections to /metrics held open
// (half after one request, half silent) never cost the daemon more than the
// cap in descriptors; a scrape during the attack succeeds, and so does a
// zone reload.
func TestAttackMetricsIdleConnections(t *testing.T) {
	d, pid, url := metricsDaemon(t)
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/metrics")
	base := testkit.FDs(t, pid)
	stop := testkit.PeakWatch(2*time.Millisecond, testkit.FDsOf(pid))
	const n = 1000
	var held []net.Conn
	defer testkit.CloseAll(&held)
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		held = append(held, c)
		if i%2 == 1 {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err == nil {
				if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}
	}
	text, took := testkit.ScrapeRetry(t, url)
	peak := stop()
	if peak > int64(base+metricsCap+fdSlack) {
		t.Errorf("the daemon held %d descriptors during the attack, %d before; the cap is %d connections", peak, base, metricsCap)
	}
	reloads(t, d)
	t.Logf("attack: %d idle/silent /metrics connections held: daemon descriptors %d -> at most %d (cap %d); refused %v, evicted %v; a scrape during the attack took %v; HUP reload ok",
		n, base, peak, metricsCap, testkit.MetricSum(text, "shardd_metrics_http_closed_total", `reason="full"`), testkit.MetricSum(text, "shardd_metrics_http_closed_total", `reason="evicted"`), took.Round(time.Millisecond))
}

// TestAttackMetricsSlowClients: 200 slowloris clients (headers a byte at a
// time) and 500 POSTs promising 1 MB bodies sent slowly. The daemon's
// descriptors stay within the cap, its memory within 20 MB of where it
// started, the POSTs get 405 at once, every slow client is closed by the
// daemon; afterwards a scrape and a zone reload succeed.
func TestAttackMetricsSlowClients(t *testing.T) {
	d, pid, url := metricsDaemon(t)
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/metrics")
	base, rss0 := testkit.FDs(t, pid), testkit.RSS(t, pid)
	stopFDs := testkit.PeakWatch(2*time.Millisecond, testkit.FDsOf(pid))
	stopRSS := testkit.PeakWatch(2*time.Millisecond, testkit.RSSOf(pid))
	const slowloris, posts = 200, 500
	var closed, got405 atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	slow := func(first string, every func(c net.Conn) error) {
		defer wg.Done()
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			closed.Add(1) // refused is closed too
			return
		}
		defer c.Close()
		if _, err := io.WriteString(c, first); err != nil {
			closed.Add(1)
			return
		}
		// At most 60 s of trickle; the daemon must close us long before.
		for j := 0; j < 600; j++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if err := every(c); err != nil {
				closed.Add(1)
				return
			}
		}
	}
	// A trickle step: fails once the daemon has closed the connection.
	trickle := func(c net.Conn) error {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 512)); err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				return err
			}
		}
		_, err := c.Write([]byte("a"))
		return err
	}
	for i := 0; i < slowloris; i++ {
		wg.Add(1)
		go slow("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ", trickle)
	}
	for i := 0; i < posts; i++ {
		wg.Add(1)
		go slow("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n", func(c net.Conn) error {
			_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
			b := make([]byte, 512)
			if n, _ := c.Read(b); n > 0 && strings.HasPrefix(string(b[:n]), "HTTP/1.1 405") && strings.Contains(string(b[:n]), "Allow: GET, HEAD") {
				got405.Add(1)
			}
			return trickle(c)
		})
	}
	deadline := time.Now().Add(60 * time.Second)
	for closed.Load() < slowloris+posts && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	peakFDs, peakRSS := stopFDs(), stopRSS()
	if c := closed.Load(); c != slowloris+posts {
		t.Errorf("%d of %d slow clients closed by the daemon within 60 s", c, slowloris+posts)
	}
	if peakFDs > int64(base+metricsCap+fdSlack) {
		t.Errorf("the daemon held %d descriptors during the attack, %d before; the cap is %d connections", peakFDs, base, metricsCap)
	}
	if grew := peakRSS - rss0; grew > 20<<20 {
		t.Errorf("the daemon's memory grew by %d MB during the attack (VmRSS %d -> %d MB)", grew>>20, rss0>>20, peakRSS>>20)
	}
	_, took := testkit.ScrapeRetry(t, url)
	// A POST on its own gets its 405 (under the attack most were refused
	// before they could send a request).
	resp, err := http.Post(url, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /metrics: %s, Allow %q; want 405 with Allow: GET, HEAD", resp.Status, resp.Header.Get("Allow"))
	}
	reloads(t, d)
	t.Logf("attack: %d slowloris + %d slow-body POSTs: all closed by the daemon (%d POSTs got in and were answered 405, the rest refused at the cap); descriptors %d -> at most %d; VmRSS %.1f -> at most %.1f MB; a scrape after took %v; HUP reload ok",
		slowloris, posts, got405.Load(), base, peakFDs, float64(rss0)/(1<<20), float64(peakRSS)/(1<<20), took.Round(time.Millisecond))
}

// TestAttackMetricsConnectionFlood: 5000 connections opened and held
// against a daemon whose descriptor limit is 64 above what it has open. The
// daemon never runs out: its count stays within the cap, and afterwards a
// scrape and a zone reload succeed.
func TestAttackMetricsConnectionFlood(t *testing.T) {
	d, pid, url := metricsDaemon(t)
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/metrics")
	base := testkit.FDs(t, pid)
	lim := uint64(base + 64)
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: lim, Max: lim}, nil); err != nil {
		t.Skipf("cannot lower the daemon's descriptor limit: %v", err)
	}
	stop := testkit.PeakWatch(2*time.Millisecond, testkit.FDsOf(pid))
	const n = 5000
	var held []net.Conn
	defer testkit.CloseAll(&held)
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		c, err := net.DialTimeout("tcp", addr, 30*time.Second) // a SYN dropped from a full backlog is retried after 1 s, then 3 s
		if err != nil {
			t.Errorf("dial %d: %v (the daemon stopped accepting)", i, err)
			break
		}
		held = append(held, c)
	}
	text, took := testkit.ScrapeRetry(t, url)
	peak := stop()
	if peak > int64(base+metricsCap+fdSlack) {
		t.Errorf("the daemon held %d descriptors during the flood, %d before (limit %d); the cap is %d connections", peak, base, lim, metricsCap)
	}
	reloads(t, d)
	t.Logf("attack: %d connections held against a limit of %d descriptors: daemon descriptors %d -> at most %d; %v closed at once (full), %v evicted; a scrape during the flood took %v; HUP reload ok",
		len(held), lim, base, peak, testkit.MetricSum(text, "shardd_metrics_http_closed_total", `reason="full"`), testkit.MetricSum(text, "shardd_metrics_http_closed_total", `reason="evicted"`), took.Round(time.Millisecond))
}
