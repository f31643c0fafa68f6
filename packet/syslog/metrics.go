package syslog

import (
	"slices"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardd/shardd/packet/sink"
)

// MetricPrefix starts the names of the handler's metrics; a sink it
// writes to is meant to name its own after it too (sink.Config.Metrics).
const MetricPrefix = "shardd_syslog"

var (
	descMessages    = prometheus.NewDesc(MetricPrefix+"_messages_total", "Syslog messages accepted by the shard, by format (rfc5424, rfc3164, invalid: did not parse, kept raw).", []string{"shard", "format"}, nil)
	descParseErrors = prometheus.NewDesc(MetricPrefix+"_parse_errors_total", "Messages that did not parse; each is written raw with a parse_error field.", []string{"shard"}, nil)
	descTruncated   = prometheus.NewDesc(MetricPrefix+"_truncated_total", "Messages longer than the handler's limit (128 KiB), cut to it; the record has truncated_bytes.", []string{"shard"}, nil)
)

// Server makes the syslog Handler of each shard, all writing to one sink,
// and collects their metrics.
type Server struct {
	out sink.Sink

	mu       sync.Mutex // guards handlers
	handlers []*Handler
}

// NewServer returns a server whose handlers write to out.
func NewServer(out sink.Sink) *Server {
	return &Server{out: out}
}

// NewHandler returns a handler whose lines go to a producer of the sink;
// shard labels its records and metrics.
func (s *Server) NewHandler(shard int) *Handler {
	h := &Handler{out: s.out.NewProducer(shard), shard: shard, lines: make([]byte, 0, 4096)}
	s.mu.Lock()
	s.handlers = append(s.handlers, h)
	s.mu.Unlock()
	return h
}

// Stats are the handlers' counters summed over one shard.
type Stats struct {
	Shard     int
	Messages  [numFormats]uint64 // by Format
	Truncated uint64             // messages cut to MaxMessage
}

// Received is every message accepted, parsed or not.
func (st *Stats) Received() uint64 {
	var n uint64
	for _, m := range st.Messages {
		n += m
	}
	return n
}

// Stats returns the published counters per shard (handlers of one shard
// index on several listeners or transports are summed), in shard order.
func (s *Server) Stats() []Stats {
	var out []Stats
	s.mu.Lock()
	for _, h := range s.handlers {
		i := slices.IndexFunc(out, func(st Stats) bool { return st.Shard == h.shard })
		if i < 0 {
			i = len(out)
			out = append(out, Stats{Shard: h.shard})
		}
		out[i].Truncated += h.pub.cut.Load()
		for f := range h.pub.msgs {
			out[i].Messages[f] += h.pub.msgs[f].Load()
		}
	}
	s.mu.Unlock()
	slices.SortStableFunc(out, func(a, b Stats) int { return a.Shard - b.Shard })
	return out
}

// Describe implements prometheus.Collector.
func (s *Server) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMessages
	ch <- descParseErrors
	ch <- descTruncated
}

// Collect implements prometheus.Collector: the messages each shard took,
// by format, its parse errors and truncations. The sink reports what
// became of them.
func (s *Server) Collect(ch chan<- prometheus.Metric) {
	for _, st := range s.Stats() {
		shard := strconv.Itoa(st.Shard)
		for f, n := range st.Messages {
			ch <- prometheus.MustNewConstMetric(descMessages, prometheus.CounterValue, float64(n), shard, Format(f).String())
		}
		ch <- prometheus.MustNewConstMetric(descParseErrors, prometheus.CounterValue, float64(st.Messages[Invalid]), shard)
		ch <- prometheus.MustNewConstMetric(descTruncated, prometheus.CounterValue, float64(st.Truncated), shard)
	}
}

var _ prometheus.Collector = (*Server)(nil)
