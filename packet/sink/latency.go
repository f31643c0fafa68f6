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
	l.counts[bucket(d)].Add(1)
	l.sumNs.Add(uint64(d.Nanoseconds()))
}

// bucket is the index of d's bucket.
func bucket(d time.Duration) int {
	sec := d.Seconds()
	i := 0
	for i < len(latencyBounds) && sec > latencyBounds[i] {
		i++
	}
	return i
}

// LatencyBatch gathers durations in one goroutine, without atomics, for a
// Latency to take at once (Latency.Add): a writer that observes every
// record adds them per batch.
type LatencyBatch struct {
	counts [len(latencyBounds) + 1]uint64
	sumNs  uint64
}

// Observe counts one duration.
func (b *LatencyBatch) Observe(d time.Duration) {
	b.counts[bucket(d)]++
	b.sumNs += uint64(d.Nanoseconds())
}

// Add counts b's durations and empties b.
func (l *Latency) Add(b *LatencyBatch) {
	for i, n := range b.counts {
		if n > 0 {
			l.counts[i].Add(n)
		}
	}
	l.sumNs.Add(b.sumNs)
	*b = LatencyBatch{}
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
