package sink

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Latency is a small fixed-bucket histogram (seconds) written by one
// goroutine, or several, and read at scrape time.
type Latency struct {
	counts [len(latencyBounds) + 1]atomic.Uint64
	sumNs  atomic.Uint64
}

// latencyBounds are the histogram's upper bounds in seconds.
var latencyBounds = [...]float64{1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1}

// Observe counts one duration.
func (l *Latency) Observe(d time.Duration) {
	sec := d.Seconds()
	i := 0
	for i < len(latencyBounds) && sec > latencyBounds[i] {
		i++
	}
	l.counts[i].Add(1)
	l.sumNs.Add(uint64(d.Nanoseconds()))
}

// Metric is the histogram as of now, described by d.
func (l *Latency) Metric(d *prometheus.Desc) prometheus.Metric {
	buckets := make(map[float64]uint64, len(latencyBounds))
	var cum uint64
	for i, b := range latencyBounds {
		cum += l.counts[i].Load()
		buckets[b] = cum
	}
	cum += l.counts[len(latencyBounds)].Load()
	return prometheus.MustNewConstHistogram(d, cum, float64(l.sumNs.Load())/1e9, buckets)
}
