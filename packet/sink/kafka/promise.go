package kafka

import (
	"bytes"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shardd/shardd/packet/sink"
)

// The produce path's costs are per batch, not per record: a batch's
// records come from a recycled tracker (no allocation once the trackers
// are warm), and the promises, which franz-go calls one at a time ("All
// promises are called serially", kgo.Client.Produce), count into plain
// integers that are published with a few atomic adds when a batch settles.

// produce hands each line of b to the client as one record; b is settled
// (sink.Queue.Settle) when the last record's promise has run.
func (s *Sink) produce(b *sink.Batch) {
	t := s.tracker(b)
	s.batches.Add(1)
	s.inflight.Add(int64(b.N))
	lines := b.Lines
	for i := range t.recs {
		n := bytes.IndexByte(lines, '\n')
		if n < 0 {
			n = len(lines)
		}
		r := &t.recs[i]
		r.Value = lines[:n:n]
		if s.cfg.Key != nil {
			r.Key = s.cfg.Key(r.Value)
		}
		lines = lines[min(n+1, len(lines)):]
		s.cl.Produce(s.ctx, r, t.promiseFn)
	}
}

// tracker is one batch's records until each has its answer. Only promises
// touch its counts after produce, one at a time: plain integers.
type tracker struct {
	s         *Sink
	b         *sink.Batch
	recs      []kgo.Record
	promiseFn func(*kgo.Record, error) // t.promise, made once per tracker
	pending   int
	written   int
	dropped   [sink.DropReasons]int
}

// tracker returns a tracker for b with b.N empty records, recycled if one
// is free.
func (s *Sink) tracker(b *sink.Batch) *tracker {
	t, _ := s.trackers.Get().(*tracker)
	if t == nil {
		t = &tracker{s: s}
		t.promiseFn = t.promise
	}
	if cap(t.recs) < b.N {
		t.recs = make([]kgo.Record, b.N)
	} else {
		t.recs = t.recs[:b.N]
		clear(t.recs)
	}
	t.b, t.pending, t.written, t.dropped = b, b.N, 0, [sink.DropReasons]int{}
	return t
}

// promiseAcc is what the promises counted and did not publish yet.
type promiseAcc struct {
	answered int64
	latency  sink.LatencyBatch
	parts    []uint64 // records acknowledged, by partition
}

// maxPartitions bounds the partitions counted one by one (and the
// memory a broker's answer can make the sink hold for them).
const maxPartitions = 1 << 16

// promise is every record's produce promise: it counts the record as
// written or dropped by reason, and settles the batch after its last.
func (t *tracker) promise(r *kgo.Record, err error) {
	s := t.s
	a := &s.acc
	a.latency.Observe(time.Since(r.Timestamp))
	a.answered++
	if err == nil {
		t.written++
		if p := int(r.Partition); p >= 0 && p < maxPartitions {
			if p >= len(a.parts) {
				a.parts = append(a.parts, make([]uint64, p+1-len(a.parts))...)
			}
			a.parts[p]++
		}
	} else {
		reason := dropReason(err)
		t.dropped[reason]++
		s.logDrop(reason, err)
	}
	if t.pending--; t.pending != 0 {
		return
	}
	s.publish()
	s.q.Settle(t.b, t.written, &t.dropped)
	t.b = nil
	s.trackers.Put(t)
	s.batches.Done()
}

// publish adds what the promises counted to what a scrape reads.
func (s *Sink) publish() {
	a := &s.acc
	s.inflight.Add(-a.answered)
	a.answered = 0
	s.produced.Add(&a.latency)
	s.parts.add(a.parts)
}

// partitionCounts are the records acknowledged per partition, as a scrape
// reads them. Only publish writes them.
type partitionCounts struct {
	n atomic.Pointer[[]atomic.Uint64]
}

// add adds local's counts and zeroes them, growing the counters if a
// partition is new.
func (c *partitionCounts) add(local []uint64) {
	cur := c.n.Load()
	if cur == nil || len(*cur) < len(local) {
		grown := make([]atomic.Uint64, len(local))
		if cur != nil {
			for i := range *cur {
				grown[i].Store((*cur)[i].Load())
			}
		}
		c.n.Store(&grown)
		cur = &grown
	}
	for i, n := range local {
		if n > 0 {
			(*cur)[i].Add(n)
			local[i] = 0
		}
	}
}

// collect sends one counter per partition.
func (c *partitionCounts) collect(ch chan<- prometheus.Metric, d *prometheus.Desc) {
	cur := c.n.Load()
	if cur == nil {
		return
	}
	for i := range *cur {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64((*cur)[i].Load()), strconv.Itoa(i))
	}
}
