package syslog

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descMessages    = prometheus.NewDesc("shardd_syslog_messages_total", "Syslog messages accepted by the shard, by format (rfc5424, rfc3164, invalid: did not parse, kept raw).", []string{"shard", "format"}, nil)
	descParseErrors = prometheus.NewDesc("shardd_syslog_parse_errors_total", "Messages that did not parse; each is written raw with a parse_error field.", []string{"shard"}, nil)
	descWritten     = prometheus.NewDesc("shardd_syslog_written_total", "Records written to the sink.", []string{"shard"}, nil)
	descDropped     = prometheus.NewDesc("shardd_syslog_dropped_total", "Accepted messages never written, by reason: queue_full (the sink fell behind and the queue's memory was spent), shutdown (the sink still failed at the drain deadline).", []string{"shard", "reason"}, nil)
	descTruncated   = prometheus.NewDesc("shardd_syslog_truncated_total", "Messages longer than the handler's limit (128 KiB), cut to it; the record has truncated_bytes.", []string{"shard"}, nil)
	descQueueDepth  = prometheus.NewDesc("shardd_syslog_queue_depth", "Messages accepted and not yet written or dropped.", []string{"shard"}, nil)
	descQueueMem    = prometheus.NewDesc("shardd_syslog_queue_buffer_bytes", "Memory of the sink's batch buffers (bounded by --sink-queue).", nil, nil)
	descSinkErrors  = prometheus.NewDesc("shardd_syslog_sink_errors_total", "Failed sink operations (write, fsync, open), by kind: disk_full, permission, removed, io.", []string{"kind"}, nil)
	descReopens     = prometheus.NewDesc("shardd_syslog_sink_reopens_total", "Times the sink file was reopened on SIGUSR1.", nil, nil)
	descWriteSec    = prometheus.NewDesc("shardd_syslog_sink_write_seconds", "Time per batch write(2) to the sink.", nil, nil)
	descSyncSec     = prometheus.NewDesc("shardd_syslog_sink_fsync_seconds", "Time per fdatasync(2) of the sink.", nil, nil)
)

// Stats are the sink's counters summed over the handlers of one shard.
type Stats struct {
	Shard     int
	Messages  [numFormats]uint64
	Written   uint64
	Dropped   [numDropReasons]uint64
	Truncated uint64 // messages cut to MaxMessage
}

// Received is every message accepted, parsed or not.
func (st *Stats) Received() uint64 {
	var n uint64
	for _, m := range st.Messages {
		n += m
	}
	return n
}

// DroppedTotal is every accepted message that was not written.
func (st *Stats) DroppedTotal() uint64 {
	var n uint64
	for _, d := range st.Dropped {
		n += d
	}
	return n
}

// Stats returns the counters per shard (handlers of one shard index on
// several listeners or transports are summed), in shard order. Written and
// dropped are read before received, so received >= written + dropped.
func (s *Sink) Stats() []Stats {
	var out []Stats
	at := map[int]int{}
	for _, h := range s.snapshotHandlers() {
		i, ok := at[h.shard]
		if !ok {
			i = len(out)
			at[h.shard] = i
			out = append(out, Stats{Shard: h.shard})
		}
		st := &out[i]
		st.Written += h.written.Load()
		st.Truncated += h.cut.Load()
		for r := range h.dropped {
			st.Dropped[r] += h.dropped[r].Load()
		}
		for f := range h.msgs {
			st.Messages[f] += h.msgs[f].Load()
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Shard < out[j-1].Shard; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// Describe implements prometheus.Collector.
func (s *Sink) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(s, ch)
}

// Collect implements prometheus.Collector.
func (s *Sink) Collect(ch chan<- prometheus.Metric) {
	for _, st := range s.Stats() {
		shard := strconv.Itoa(st.Shard)
		for f, n := range st.Messages {
			ch <- prometheus.MustNewConstMetric(descMessages, prometheus.CounterValue, float64(n), shard, Format(f).String())
		}
		ch <- prometheus.MustNewConstMetric(descParseErrors, prometheus.CounterValue, float64(st.Messages[Invalid]), shard)
		ch <- prometheus.MustNewConstMetric(descWritten, prometheus.CounterValue, float64(st.Written), shard)
		ch <- prometheus.MustNewConstMetric(descTruncated, prometheus.CounterValue, float64(st.Truncated), shard)
		for r, n := range st.Dropped {
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(n), shard, DropReasonNames[r])
		}
		ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(st.Received()-st.Written-st.DroppedTotal()), shard)
	}
	ch <- prometheus.MustNewConstMetric(descQueueMem, prometheus.GaugeValue, float64(s.allocated.Load()))
	for k := range s.errs {
		ch <- prometheus.MustNewConstMetric(descSinkErrors, prometheus.CounterValue, float64(s.errs[k].Load()), ErrKindNames[k])
	}
	ch <- prometheus.MustNewConstMetric(descReopens, prometheus.CounterValue, float64(s.reopens.Load()))
	ch <- s.writeLat.metric(descWriteSec)
	ch <- s.syncLat.metric(descSyncSec)
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
