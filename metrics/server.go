package metrics

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/shardd/shardd/metrics/fdlimit"
)

// Limits bound what the metrics endpoint gives its clients. Zero fields take
// the value of [DefaultLimits].
type Limits struct {
	// MaxConns is how many connections are held at once. A connection
	// beyond it is accepted and then either takes the slot of a held one
	// (see EvictAfter) or is closed at once (counted as full).
	MaxConns int
	// MaxPerSource is how many of them one source address may hold (IPv6:
	// one /64). A new connection from a source at its cap takes the slot
	// of that source's oldest evictable connection, or is closed at once
	// (counted as source).
	MaxPerSource int
	// EvictAfter: at MaxConns, a new connection takes the slot of an
	// evictable connection, the oldest of the source that holds the most
	// slots. Evictable are: one with no request yet and (Linux: SIOCINQ)
	// none waiting in its receive queue, one idle between keep-alive
	// requests, and one whose reply write has been blocked (its client does
	// not read) for EvictAfter or more. A scraper's request reaches the
	// kernel within microseconds of its connection's accept and from then
	// on keeps it from eviction, so silent connections push it out only if
	// MaxConns of them are accepted in that time; while every slot is held
	// by a request being answered, a scraper waits at most EvictAfter for a
	// stalled one to become evictable.
	EvictAfter        time.Duration
	ReadHeaderTimeout time.Duration // request line and headers
	ReadTimeout       time.Duration // the whole request
	WriteTimeout      time.Duration // from the end of the headers to the end of the reply
	IdleTimeout       time.Duration // keep-alive between requests
	MaxHeaderBytes    int
}

// DefaultLimits are the limits shardd's --metrics endpoint runs with.
func DefaultLimits() Limits {
	return Limits{
		MaxConns:          16,
		MaxPerSource:      4,
		EvictAfter:        time.Second,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	orDefault(&l.MaxConns, d.MaxConns)
	orDefault(&l.MaxPerSource, d.MaxPerSource)
	orDefault(&l.EvictAfter, d.EvictAfter)
	orDefault(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	orDefault(&l.ReadTimeout, d.ReadTimeout)
	orDefault(&l.WriteTimeout, d.WriteTimeout)
	orDefault(&l.IdleTimeout, d.IdleTimeout)
	orDefault(&l.MaxHeaderBytes, d.MaxHeaderBytes)
	return l
}

// orDefault sets *v to d if it is zero or negative.
func orDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Reasons a connection was closed by the server's limits, the reason label
// of shardd_metrics_http_closed_total.
const (
	closedEvicted = iota // its slot went to a new connection
	closedFull           // new, and no slot could be freed
	closedMethod         // not a GET or HEAD without a body
	closedSource         // new, its source at MaxPerSource, and none of its slots could be freed
	closedReasons
)

var closedReasonNames = [closedReasons]string{"evicted", "full", "method", "source"}

// Kinds of the http.Server's own error messages, the kind label of
// shardd_metrics_http_errors_total.
var errorKinds = []string{"accept", "tls", "panic", "other"}

var (
	descHTTPClosed = prometheus.NewDesc("shardd_metrics_http_closed_total",
		"Connections to the metrics endpoint closed by its limits: evicted (idle, without a request or with a stalled reply, to make room), full (no room), method (not GET/HEAD), source (its source address at its cap).", []string{"reason"}, nil)
	descHTTPErrors = prometheus.NewDesc("shardd_metrics_http_errors_total",
		"Errors of the metrics endpoint's HTTP server, by kind (accept, tls, panic, other); each kind is logged once per episode.", []string{"kind"}, nil)
	descHTTPConns = prometheus.NewDesc("shardd_metrics_http_connections", "Connections the metrics endpoint holds open.", nil, nil)
)

// errorQuiet: an error kind that recurs after this long without one starts
// a new episode, and is logged again.
const errorQuiet = time.Minute

// Server serves [Handler] over a listener within [Limits]. It is a
// prometheus.Collector of its own limits' counters.
type Server struct {
	srv *http.Server
	ln  net.Listener
	lim Limits
	log *zap.Logger

	mu       sync.Mutex
	conns    map[*trackedConn]*connInfo
	bySource map[string]int // held connections by sourceKey
	closed   [closedReasons]atomic.Uint64

	errMu        sync.Mutex
	errs         map[string]uint64    // by kind
	errLast      map[string]time.Time // last error of the kind
	acceptLogged bool                 // an accept error was logged, its recovery not yet
}

type connInfo struct {
	state http.ConnState
	since time.Time
}

// NewServer returns a server of g's metrics on ln; call Serve to run it.
// The server's own errors go to log, once per kind and episode.
func NewServer(ln net.Listener, g prometheus.Gatherer, lim Limits, log *zap.Logger) *Server {
	lim = lim.withDefaults()
	s := &Server{lim: lim, log: log, conns: map[*trackedConn]*connInfo{}, bySource: map[string]int{}, errs: map[string]uint64{}, errLast: map[string]time.Time{}}
	s.ln = &limitListener{Listener: ln, s: s}
	s.srv = &http.Server{
		Handler:           s.onlyGet(Handler(g)),
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ConnState:         s.connState,
		ErrorLog:          newErrorLog(s),
	}
	return s
}

// Serve serves until Close; it returns nil after Close.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close closes the listener and every connection.
func (s *Server) Close() error { return s.srv.Close() }

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Conns is the number of connections the server holds open.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Describe implements prometheus.Collector.
func (s *Server) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHTTPClosed
	ch <- descHTTPErrors
	ch <- descHTTPConns
}

// Collect implements prometheus.Collector.
func (s *Server) Collect(ch chan<- prometheus.Metric) {
	for r, name := range closedReasonNames {
		ch <- prometheus.MustNewConstMetric(descHTTPClosed, prometheus.CounterValue, float64(s.closed[r].Load()), name)
	}
	s.errMu.Lock()
	for _, k := range errorKinds {
		ch <- prometheus.MustNewConstMetric(descHTTPErrors, prometheus.CounterValue, float64(s.errs[k]), k)
	}
	s.errMu.Unlock()
	ch <- prometheus.MustNewConstMetric(descHTTPConns, prometheus.GaugeValue, float64(s.Conns()))
}

// admit gives c a slot, evicting a connection if its source or the server
// is full; it reports false (and has closed c) when no slot could be had.
func (s *Server) admit(c *trackedConn) bool {
	now := time.Now()
	c.src = sourceKey(c.Conn.RemoteAddr())
	var victims []*trackedConn
	s.mu.Lock()
	if s.bySource[c.src] >= s.lim.MaxPerSource {
		v := s.evictable(now, c.src)
		if v == nil {
			s.mu.Unlock()
			s.closed[closedSource].Add(1)
			_ = c.Conn.Close()
			return false
		}
		s.drop(v)
		victims = append(victims, v)
	}
	if len(s.conns) >= s.lim.MaxConns {
		v := s.evictable(now, "")
		if v == nil {
			s.mu.Unlock()
			s.closed[closedFull].Add(1)
			_ = c.Conn.Close()
			for _, v := range victims {
				s.closed[closedEvicted].Add(1)
				_ = v.Close()
			}
			return false
		}
		s.drop(v)
		victims = append(victims, v)
	}
	s.conns[c] = &connInfo{state: http.StateNew, since: now}
	s.bySource[c.src]++
	s.mu.Unlock()
	for _, v := range victims {
		s.closed[closedEvicted].Add(1)
		_ = v.Close()
	}
	return true
}

// evictable is the connection (of source src, if not "") that gives its
// slot to a new one, or nil: among those that may, one of the source that
// holds the most slots (a flood from few addresses pays for itself), the
// oldest of them. The caller holds s.mu.
func (s *Server) evictable(now time.Time, src string) *trackedConn {
	var victim *trackedConn
	var oldest time.Time
	most := 0
	for tc, in := range s.conns {
		if src != "" && tc.src != src {
			continue
		}
		since := in.since
		switch in.state {
		case http.StateIdle:
		case http.StateNew:
			// No request read yet. One whose request has arrived (and
			// waits for the server's goroutine to read it) is kept.
			if pending(tc.Conn) {
				continue
			}
		case http.StateActive:
			w := tc.writing.Load()
			if w == 0 || now.Sub(time.Unix(0, w)) < s.lim.EvictAfter {
				continue // being answered
			}
			since = time.Unix(0, w)
		default:
			continue
		}
		if n := s.bySource[tc.src]; victim == nil || n > most || (n == most && since.Before(oldest)) {
			victim, oldest, most = tc, since, n
		}
	}
	return victim
}

// drop frees tc's slot. The caller holds s.mu.
func (s *Server) drop(tc *trackedConn) {
	if _, ok := s.conns[tc]; !ok {
		return
	}
	delete(s.conns, tc)
	if s.bySource[tc.src]--; s.bySource[tc.src] <= 0 {
		delete(s.bySource, tc.src)
	}
}

// sourceKey is the per-source cap's key of a remote address: the IP, or
// for IPv6 its /64.
func sourceKey(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return ta.IP.Mask(net.CIDRMask(64, 128)).String()
}

func (s *Server) connState(c net.Conn, st http.ConnState) {
	tc, ok := c.(*trackedConn)
	if !ok || st == http.StateNew || st == http.StateClosed {
		return
	}
	s.mu.Lock()
	if in := s.conns[tc]; in != nil {
		in.state, in.since = st, time.Now()
	}
	s.mu.Unlock()
}

// onlyGet passes GET and HEAD requests without a body to h. Anything else
// gets 405 and the connection is closed at once: its body is never read.
func (s *Server) onlyGet(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
			h.ServeHTTP(w, r)
			return
		}
		s.closed[closedMethod].Add(1)
		const body = "only GET and HEAD without a body\n"
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil { // not HTTP/1: the server closes after the reply
			w.Header().Set("Allow", "GET, HEAD")
			w.Header().Set("Connection", "close")
			http.Error(w, strings.TrimSpace(body), http.StatusMethodNotAllowed)
			return
		}
		defer conn.Close()
		_ = conn.SetWriteDeadline(time.Now().Add(s.lim.WriteTimeout))
		_, _ = fmt.Fprintf(conn, "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	})
}

// limitListener admits each accepted connection through the server's
// limits.
type limitListener struct {
	net.Listener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err // http.Server logs it (once per episode) and retries
		}
		l.s.acceptOK()
		tc := &trackedConn{Conn: c, s: l.s}
		if l.s.admit(tc) {
			return tc, nil
		}
	}
}

// trackedConn frees its slot when closed, by the server or by an eviction.
type trackedConn struct {
	net.Conn
	s       *Server
	src     string       // sourceKey of the remote address
	writing atomic.Int64 // when a Write still under way began (UnixNano), or 0
	once    sync.Once
	err     error
}

// Write records how long a write has been blocked: a client that does not
// read its reply stalls it.
func (c *trackedConn) Write(p []byte) (int, error) {
	c.writing.Store(time.Now().UnixNano())
	n, err := c.Conn.Write(p)
	c.writing.Store(0)
	return n, err
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		c.s.drop(c)
		c.s.mu.Unlock()
		c.err = c.Conn.Close()
	})
	return c.err
}

// newErrorLog is the http.Server's ErrorLog: each message becomes a zap
// line, once per kind and episode, and a count.
func newErrorLog(s *Server) *log.Logger {
	return log.New(errorWriter{s}, "", 0)
}

type errorWriter struct{ s *Server }

func (w errorWriter) Write(p []byte) (int, error) {
	w.s.serverError(strings.TrimSpace(string(p)))
	return len(p), nil
}

func errorKind(msg string) string {
	switch m := strings.TrimPrefix(msg, "http: "); {
	case strings.HasPrefix(m, "Accept error"):
		return "accept"
	case strings.HasPrefix(m, "TLS handshake error"):
		return "tls"
	case strings.HasPrefix(m, "panic serving"):
		return "panic"
	}
	return "other"
}

func (s *Server) serverError(msg string) {
	kind := errorKind(msg)
	now := time.Now()
	s.errMu.Lock()
	s.errs[kind]++
	last, seen := s.errLast[kind]
	s.errLast[kind] = now
	logIt := !seen || now.Sub(last) >= errorQuiet // a new episode
	if logIt && kind == "accept" {
		s.acceptLogged = true
	}
	s.errMu.Unlock()
	if !logIt {
		return
	}
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	fields := append([]zap.Field{zap.String("kind", kind), zap.String("error", msg)}, fdlimit.Fields(errors.New(msg))...)
	s.log.Warn("metrics endpoint: server error (repeats are counted in shardd_metrics_http_errors_total, not logged)", fields...)
}

// acceptOK ends an episode of failing accepts.
func (s *Server) acceptOK() {
	s.errMu.Lock()
	logged := s.acceptLogged
	s.acceptLogged = false
	n := s.errs["accept"]
	s.errMu.Unlock()
	if logged {
		s.log.Info("metrics endpoint accepts connections again", zap.Uint64("accept_errors_total", n))
	}
}
