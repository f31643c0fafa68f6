package sink

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// descs are a queue's metric descriptions, named after Config.Metrics.
type descs struct {
	written, dropped, depth, mem *prometheus.Desc
}

func newDescs(prefix string) descs {
	return descs{
		written: prometheus.NewDesc(prefix+"_written_total", "Records written to the sink.", []string{"shard"}, nil),
		dropped: prometheus.NewDesc(prefix+"_dropped_total", "Accepted messages never written, by reason: queue_full (the sink fell behind and the queue's memory was spent), shutdown (the sink still failed at the drain deadline), too_large (over the destination's size limit), rejected (refused for good by the destination).", []string{"shard", "reason"}, nil),
		depth:   prometheus.NewDesc(prefix+"_queue_depth", "Messages accepted and not yet written or dropped.", []string{"shard"}, nil),
		mem:     prometheus.NewDesc(prefix+"_queue_buffer_bytes", "Memory of the sink's batch buffers (bounded by --sink-queue).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (q *Queue) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.desc.written
	ch <- q.desc.dropped
	ch <- q.desc.depth
	ch <- q.desc.mem
}

// Collect implements prometheus.Collector: per shard the lines written,
// dropped by reason and still queued; the memory of the batch buffers.
func (q *Queue) Collect(ch chan<- prometheus.Metric) {
	for _, st := range q.Stats() {
		shard := strconv.Itoa(st.Shard)
		ch <- prometheus.MustNewConstMetric(q.desc.written, prometheus.CounterValue, float64(st.Written), shard)
		for r, n := range st.Dropped {
			ch <- prometheus.MustNewConstMetric(q.desc.dropped, prometheus.CounterValue, float64(n), shard, DropReason(r).String())
		}
		ch <- prometheus.MustNewConstMetric(q.desc.depth, prometheus.GaugeValue, float64(st.Queued()), shard)
	}
	ch <- prometheus.MustNewConstMetric(q.desc.mem, prometheus.GaugeValue, float64(q.allocated()))
}

var _ prometheus.Collector = (*Queue)(nil)
