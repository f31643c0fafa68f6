package metrics

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// testLimits are short, so the attacks below end quickly.
var testLimits = Limits{
	MaxConns:          8,
	EvictAfter:        200 * time.Millisecond,
	ReadHeaderTimeout: 500 * time.Millisecond,
	ReadTimeout:       time.Second,
	WriteTimeout:      2 * time.Second,
	IdleTimeout:       30 * time.Second, // long: only evictions free idle slots here
	MaxHeaderBytes:    4 << 10,
}

// startServer serves a registry holding one gauge on a loopback listener.
func startServer(t *testing.T, ln net.Listener, lim Limits) (*Server, *observer.ObservedLogs) {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shardd_test_up", Help: "1."}, func() float64 { return 1 }))
	core, logs := observer.New(zap.InfoLevel)
	s := NewServer(ln, reg, lim, zap.New(core))
	reg.MustRegister(s)
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, logs
}

// scrapeOK fetches /metrics on a new connection, retrying until deadline
// (a scraper retries at its next interval); it returns how long it took.
func scrapeOK(t *testing.T, addr net.Addr) time.Duration {
	t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < 30*time.Second {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + addr.String() + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(b), "shardd_test_up 1") {
				return time.Since(start)
			}
			err = fmt.Errorf("%s: %q", resp.Status, b)
		}
		last = err
		time.Sleep(10 * time.Millisecond) // a refused scraper retries
	}
	t.Fatalf("no scrape succeeded within 30s: %v", last)
	return 0
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// countingListener counts the connections accepted from it.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

func closedCount(s *Server, reason int) float64 { return float64(s.closed[reason].Load()) }

// TestAttackIdleKeepAlives: 1000 connections held open, half after one
// request (idle keep-alives), half silent. The server never holds more than
// MaxConns; a scrape made while all of them are still open succeeds.
func TestAttackIdleKeepAlives(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: raw}
	s, _ := startServer(t, ln, testLimits)
	peak := watchPeak(s.Conns)
	const n = 1000
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", s.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		held = append(held, c)
		if i%2 == 0 {
			continue // silent
		}
		// One request, its reply read: the connection is then an idle
		// keep-alive. It may already have been closed by then if the
		// server was full of younger silent connections.
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err == nil {
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		_ = c.SetDeadline(time.Time{})
	}
	// Wait until the server has accepted every connection. (Counting
	// evicted + full + held missed the silent connections that the header
	// timeout closed when the client, on a loaded machine, took longer
	// than that between two connections: the sum then never reached n.)
	waitFor(t, "the server to have taken every connection", func() bool { return ln.accepted.Load() >= n })
	took := scrapeOK(t, s.Addr())
	max := peak()
	if max > testLimits.MaxConns {
		t.Errorf("the server held %d connections at once; the cap is %d", max, testLimits.MaxConns)
	}
	t.Logf("attack: %d idle/silent connections held by the client: server held at most %d (cap %d), evicted %v, closed as full %v; a scrape during the attack took %v",
		n, max, testLimits.MaxConns, closedCount(s, closedEvicted), closedCount(s, closedFull), took.Round(time.Millisecond))
}

// TestAttackSlowloris: clients that send their headers a byte at a time are
// closed by the header timeout or evicted; none outlives the limits, and a
// scrape during the attack succeeds.
func TestAttackSlowloris(t *testing.T) {
	s, _ := startServer(t, nil, testLimits)
	peak := watchPeak(s.Conns)
	const n = 200
	var wg sync.WaitGroup
	var closedByServer atomic.Int64
	stop := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", s.Addr().String(), 10*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
				closedByServer.Add(1)
				return
			}
			// One byte every 50 ms for at most 30 s; the server must close
			// the connection long before.
			for j := 0; j < 600; j++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
				if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
					closedByServer.Add(1)
					return
				}
				if _, err := c.Write([]byte("a")); err != nil {
					closedByServer.Add(1)
					return
				}
			}
		}()
	}
	took := scrapeOK(t, s.Addr())
	waitFor(t, "every slow client to be closed by the server", func() bool { return closedByServer.Load() == n })
	close(stop)
	wg.Wait()
	max := peak()
	if max > testLimits.MaxConns {
		t.Errorf("the server held %d connections at once; the cap is %d", max, testLimits.MaxConns)
	}
	t.Logf("attack: %d slowloris clients: all %d closed by the server (header timeout %v, evict after %v), at most %d held at once; a scrape during the attack took %v",
		n, closedByServer.Load(), testLimits.ReadHeaderTimeout, testLimits.EvictAfter, max, took.Round(time.Millisecond))
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestAttackSlowBody: POSTs (and a GET with a body) that promise a large
// body and send it slowly get 405 with an Allow header before they have
// sent it, and are closed: the body is never read.
func TestAttackSlowBody(t *testing.T) {
	s, _ := startServer(t, nil, testLimits)
	const n = 100
	var wg sync.WaitGroup
	var got405 atomic.Int64
	errs := make(chan error, n)
	slots := make(chan struct{}, testLimits.MaxConns/2) // within the cap: each one must get its reply
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			method := "POST"
			if i%10 == 0 {
				method = "GET"
			}
			c, err := net.DialTimeout("tcp", s.Addr().String(), 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			// 10 MB promised, 16 bytes sent: the reply must come anyway.
			if _, err := fmt.Fprintf(c, "%s /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n0123456789abcdef", method); err != nil {
				errs <- err
				return
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				errs <- fmt.Errorf("no reply before the body was sent: %v", err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
				errs <- fmt.Errorf("%s with a body: %s, Allow %q; want 405 with Allow: GET, HEAD", method, resp.Status, resp.Header.Get("Allow"))
				return
			}
			if _, err := br.ReadByte(); err != io.EOF && !isReset(err) {
				errs <- fmt.Errorf("connection still open after the 405: %v", err)
				return
			}
			got405.Add(1)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// HEAD and GET still work.
	for _, m := range []string{"GET", "HEAD"} {
		req, _ := http.NewRequest(m, "http://"+s.Addr().String()+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %s", m, resp.Status)
		}
	}
	t.Logf("attack: %d requests with a 10 MB body sent slowly: %d answered 405 (Allow: GET, HEAD) and closed before their body was sent", n, got405.Load())
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// emfileListener fails its first n accepts with EMFILE, as a process at its
// descriptor limit does.
type emfileListener struct {
	net.Listener
	n atomic.Int64
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestServerErrorsLoggedOnce: a run of failing accepts (EMFILE) is one zap
// line naming the cause and the fix, then one line when accepts work again;
// every failure is counted. Nothing goes to Go's standard logger.
func TestServerErrorsLoggedOnce(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &emfileListener{Listener: inner}
	ln.n.Store(6)
	s, logs := startServer(t, ln, testLimits)
	scrapeOK(t, s.Addr())
	errLines := logs.FilterMessageSnippet("server error").All()
	if len(errLines) != 1 {
		t.Fatalf("%d error lines for 6 failed accepts, want 1: %v", len(errLines), errLines)
	}
	f := errLines[0].ContextMap()
	if f["kind"] != "accept" || !strings.Contains(f["error"].(string), "too many open files") || !strings.Contains(f["fix"].(string), "LimitNOFILE") {
		t.Errorf("error line %v: want kind accept, the error and the fix", f)
	}
	if n := logs.FilterMessage("metrics endpoint accepts connections again").Len(); n != 1 {
		t.Errorf("%d recovery lines, want 1", n)
	}
	want := `
# HELP shardd_metrics_http_errors_total Errors of the metrics endpoint's HTTP server, by kind (accept, tls, panic, other); each kind is logged once per episode.
# TYPE shardd_metrics_http_errors_total counter
shardd_metrics_http_errors_total{kind="accept"} 6
shardd_metrics_http_errors_total{kind="other"} 0
shardd_metrics_http_errors_total{kind="panic"} 0
shardd_metrics_http_errors_total{kind="tls"} 0
`
	if err := testutil.CollectAndCompare(s, strings.NewReader(want), "shardd_metrics_http_errors_total"); err != nil {
		t.Error(err)
	}
}
