package kafka

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// gather returns the sink's metrics: name → label value (partition, or
// "") → value (a histogram's count).
func gather(t *testing.T, s *Sink) map[string]map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(s); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		m := map[string]float64{}
		for _, x := range mf.Metric {
			label := ""
			for _, l := range x.Label {
				if l.GetName() == "partition" {
					label = l.GetValue()
				}
			}
			switch {
			case x.Counter != nil:
				m[label] += x.Counter.GetValue()
			case x.Gauge != nil:
				m[label] += x.Gauge.GetValue()
			case x.Histogram != nil:
				m[label] += float64(x.Histogram.GetSampleCount())
			}
		}
		out[mf.GetName()] = m
	}
	return out
}

// TestPartitionCounts: 30000 lines of 40 sources into a topic of 5
// partitions: shardd_sink_partition_records_total has one series per
// partition, each equal to that partition's end offset, summing to what
// was written; every record's latency was observed and none is in flight.
func TestPartitionCounts(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(5, topic))
	defer c.Close()
	s := openSink(t, c.ListenAddrs(), nil)
	const sources, n = 40, 750
	sendLines(s, 3, sources, 0, n)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends := endOffsets(t, ctx, cl)
	m := gather(t, s)
	parts := m[MetricPrefix+"_partition_records_total"]
	if len(ends) != 5 || len(parts) != 5 {
		t.Fatalf("%d partitions in the topic, %d series (%v); want 5 each", len(ends), len(parts), parts)
	}
	var sum float64
	for p, end := range ends {
		got := parts[strconv.Itoa(int(p))]
		if got != float64(end) {
			t.Errorf("partition %d: counted %v, end offset %d", p, got, end)
		}
		if end == 0 {
			t.Errorf("partition %d empty: the test's keys do not spread", p)
		}
		sum += got
	}
	st := totals(s)
	if sum != float64(st.Written) || st.Written != sources*n {
		t.Fatalf("partitions sum to %v, written %d, sent %d", sum, st.Written, sources*n)
	}
	if got := m[MetricPrefix+"_produce_seconds"][""]; got != sources*n {
		t.Errorf("%v produce latencies observed, want %d", got, sources*n)
	}
	if got := m[MetricPrefix+"_inflight_records"][""]; got != 0 {
		t.Errorf("%v records in flight after Close", got)
	}
	t.Logf("per partition: %v", parts)
}
