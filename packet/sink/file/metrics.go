package file

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// nameMetrics makes the descriptions of the file sink's own metrics, named
// after Config.Queue.Metrics (the queue's are sink.Queue's).
func (s *Sink) nameMetrics() {
	p := s.cfg.Queue.Metrics
	s.descErrors = prometheus.NewDesc(p+"_sink_errors_total", "Failed sink operations (write, fsync, open), by kind: disk_full, permission, removed, io.", []string{"kind"}, nil)
	s.descReopens = prometheus.NewDesc(p+"_sink_reopens_total", "Times the sink file was reopened on SIGUSR1.", nil, nil)
	s.descWrite = prometheus.NewDesc(p+"_sink_write_seconds", "Time per batch write(2) to the sink.", nil, nil)
	s.descSync = prometheus.NewDesc(p+"_sink_fsync_seconds", "Time per fdatasync(2) of the sink.", nil, nil)
}

// Describe implements prometheus.Collector.
func (s *Sink) Describe(ch chan<- *prometheus.Desc) {
	s.q.Describe(ch)
	ch <- s.descErrors
	ch <- s.descReopens
	ch <- s.descWrite
	ch <- s.descSync
}

// Collect implements prometheus.Collector: the queue's metrics and the
// file's errors by kind, reopens and write and fdatasync latencies.
func (s *Sink) Collect(ch chan<- prometheus.Metric) {
	s.q.Collect(ch)
	for k := range s.errs {
		ch <- prometheus.MustNewConstMetric(s.descErrors, prometheus.CounterValue, float64(s.errs[k].Load()), ErrKind(k).String())
	}
	ch <- prometheus.MustNewConstMetric(s.descReopens, prometheus.CounterValue, float64(s.reopens.Load()))
	ch <- s.writeLat.metric(s.descWrite)
	ch <- s.syncLat.metric(s.descSync)
}

// latency is a small fixed-bucket histogram written by the writer goroutine
// and read at scrape time.
type latency struct {
	counts [len(latencyBounds) + 1]atomic.Uint64
	sumNs  atomic.Uint64
}

// latencyBounds are the histogram's upper bounds in seconds.
var latencyBounds = [...]float64{1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1}

func (l *latency) observe(d time.Duration) {
	sec := d.Seconds()
	i := 0
	for i < len(latencyBounds) && sec > latencyBounds[i] {
		i++
	}
	l.counts[i].Add(1)
	l.sumNs.Add(uint64(d.Nanoseconds()))
}

func (l *latency) metric(d *prometheus.Desc) prometheus.Metric {
	buckets := make(map[float64]uint64, len(latencyBounds))
	var cum uint64
	for i, b := range latencyBounds {
		cum += l.counts[i].Load()
		buckets[b] = cum
	}
	cum += l.counts[len(latencyBounds)].Load()
	return prometheus.MustNewConstHistogram(d, cum, float64(l.sumNs.Load())/1e9, buckets)
}

var _ prometheus.Collector = (*Sink)(nil)
