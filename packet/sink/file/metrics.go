package file

import (
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
	ch <- s.writeLat.Metric(s.descWrite)
	ch <- s.syncLat.Metric(s.descSync)
}

var _ prometheus.Collector = (*Sink)(nil)
