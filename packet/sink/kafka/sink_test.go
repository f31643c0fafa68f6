package kafka

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shardd/shardd/packet/sink"
)

const topic = "syslog"

// testKey is the key of the test lines: the text before the first space.
func testKey(v []byte) []byte {
	if i := bytes.IndexByte(v, ' '); i >= 0 {
		return v[:i]
	}
	return nil
}

// line is test line seq of source src.
func line(src, seq int) string { return fmt.Sprintf("h%d %d\n", src, seq) }

func openSink(t *testing.T, brokers []string, mod func(*Config)) *Sink {
	t.Helper()
	cfg := Config{Brokers: brokers, Topic: topic, Key: testKey, StartTimeout: 2 * time.Second,
		Queue: sink.Config{QueueBytes: 4 << 20, BufSize: 64 << 10, FlushInterval: 5 * time.Millisecond}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sendLines writes n lines per source for sources sources, from shards
// producers, in batches of 100 lines per producer.
func sendLines(s *Sink, shards, sources, from, n int) {
	ps := make([]sink.Producer, shards)
	for i := range ps {
		ps[i] = s.NewProducer(i)
	}
	var b []byte
	k := 0
	for seq := from; seq < from+n; seq++ {
		for src := range sources {
			b = append(b, line(src, seq)...)
			k++
			if k == 100 {
				ps[src%shards].Write(b, k)
				b, k = b[:0], 0
			}
		}
	}
	if k > 0 {
		ps[0].Write(b, k)
	}
}

// totals sums the sink's counters.
func totals(s *Sink) (st sink.Stats) {
	for _, x := range s.Stats() {
		st.Accepted += x.Accepted
		st.Written += x.Written
		for r := range x.Dropped {
			st.Dropped[r] += x.Dropped[r]
		}
	}
	return st
}

// consume reads the topic until want records came (60 s at most), and
// checks that the topic holds exactly that many (the sum of the partitions'
// end offsets): no duplicates. It returns the records.
func consume(t *testing.T, brokers []string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < want && ctx.Err() == nil {
		f := cl.PollFetches(ctx)
		f.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	if len(recs) != want {
		t.Fatalf("consumed %d records, want %d", len(recs), want)
	}
	if n := sumOffsets(endOffsets(t, ctx, cl)); n != int64(want) {
		t.Fatalf("the topic holds %d records, want %d (duplicates?)", n, want)
	}
	return recs
}

func sumOffsets(m map[int32]int64) (sum int64) {
	for _, o := range m {
		sum += o
	}
	return sum
}

// endOffsets returns the end offsets of the topic's partitions.
func endOffsets(t *testing.T, ctx context.Context, cl *kgo.Client) map[int32]int64 {
	t.Helper()
	return endOffsetsOf(t, ctx, cl, topic)
}

// endOffsetsOf returns the end offsets of the partitions of a topic.
func endOffsetsOf(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) map[int32]int64 {
	t.Helper()
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range mresp.Topics[0].Partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p.Partition, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	ends := map[int32]int64{}
	for _, shard := range cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			t.Fatal(shard.Err)
		}
		for _, rt := range shard.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, rp := range rt.Partitions {
				ends[rp.Partition] = rp.Offset
			}
		}
	}
	return ends
}

// checkOrder checks that every source's records are on one partition, in
// sequence, each exactly once, from 0 to n-1.
func checkOrder(t *testing.T, recs []*kgo.Record, sources, n int) {
	t.Helper()
	next := make(map[string]int)
	part := make(map[string]int32)
	for _, r := range recs {
		var src string
		var seq int
		if _, err := fmt.Sscanf(string(r.Value), "%s %d", &src, &seq); err != nil || string(r.Key) != src {
			t.Fatalf("record %q key %q", r.Value, r.Key)
		}
		if p, ok := part[src]; ok && p != r.Partition {
			t.Fatalf("source %s on partitions %d and %d", src, p, r.Partition)
		}
		part[src] = r.Partition
		if seq != next[src] {
			t.Fatalf("source %s: record %d after %d", src, seq, next[src]-1)
		}
		next[src]++
	}
	if len(next) != sources {
		t.Fatalf("%d sources, want %d", len(next), sources)
	}
	for src, k := range next {
		if k != n {
			t.Fatalf("source %s: %d records, want %d", src, k, n)
		}
	}
}

// waitWritten waits (60 s at most) until the sink has written n lines.
func waitWritten(t *testing.T, s *Sink, n uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for totals(s).Written < n {
		if time.Now().After(deadline) {
			st := totals(s)
			t.Fatalf("written %d of %d (dropped %v, in flight %d)", st.Written, n, st.Dropped, s.inflight.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOrderAndAccounting: 20000 lines of 20 sources from 4 producers into
// a 5-partition topic: all acknowledged (written = accepted, nothing
// dropped), consumed exactly once each, each source's in order on one
// partition; in flight and the queue are empty after Close.
func TestOrderAndAccounting(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(5, topic))
	defer c.Close()
	s := openSink(t, c.ListenAddrs(), nil)
	const sources, n = 20, 1000
	sendLines(s, 4, sources, 0, n)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := totals(s)
	if st.Accepted != sources*n || st.Written != st.Accepted || st.DroppedTotal() != 0 || s.inflight.Load() != 0 {
		t.Fatalf("accepted %d written %d dropped %v in flight %d", st.Accepted, st.Written, st.Dropped, s.inflight.Load())
	}
	checkOrder(t, consume(t, c.ListenAddrs(), sources*n), sources, n)
}

// TestTopicMissing: with a broker answering, a topic that does not exist
// is an error at Open that names it and the fix.
func TestTopicMissing(t *testing.T) {
	c := newCluster(t)
	defer c.Close()
	_, err := Open(Config{Brokers: c.ListenAddrs(), Topic: "nosuch", StartTimeout: 10 * time.Second})
	if err == nil || !strings.Contains(err.Error(), `"nosuch" does not exist`) || !strings.Contains(err.Error(), "create it") {
		t.Fatalf("Open: %v, want the topic named as missing", err)
	}
}

// TestOversize: with the topic's max.message.bytes at 2000, a record of
// 5000 bytes among small ones is dropped and counted (too_large); every
// other record is written, in order.
func TestOversize(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, topic))
	defer c.Close()
	setTopicConfig(t, c.ListenAddrs(), "max.message.bytes", "2000")
	s := openSink(t, c.ListenAddrs(), nil)
	if got := s.maxBytes.Load(); got != 2000 {
		t.Fatalf("max bytes %d, want the topic's 2000", got)
	}
	const n = 3000
	writeWithBig(s, n)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := totals(s)
	if st.Written != n-1 || st.Dropped[sink.DropTooLarge] != 1 || st.DroppedTotal() != 1 {
		t.Fatalf("written %d dropped %v, want %d written and 1 too_large", st.Written, st.Dropped, n-1)
	}
	checkWithoutBig(t, c.ListenAddrs(), n)
}

// writeWithBig writes n lines of source 0, one at a time, the middle one
// replaced by a line of 5000 bytes.
func writeWithBig(s *Sink, n int) {
	p := s.NewProducer(0)
	for i := range n {
		l := line(0, i)
		if i == n/2 {
			l = "big " + strings.Repeat("x", 5000) + "\n"
		}
		p.Write([]byte(l), 1)
	}
}

// checkWithoutBig checks that the topic holds writeWithBig's lines but the
// big one, in order, each once.
func checkWithoutBig(t *testing.T, brokers []string, n int) {
	t.Helper()
	for i, r := range consume(t, brokers, n-1) {
		want := i
		if i >= n/2 {
			want++
		}
		if string(r.Value) != strings.TrimSuffix(line(0, want), "\n") {
			t.Fatalf("record %d = %q", i, r.Value)
		}
	}
}

func setTopicConfig(t *testing.T, brokers []string, name, value string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Value = name, kmsg.StringPtr(value)
	r.Configs = append(r.Configs, c)
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("alter configs: %v %+v", err, resp)
	}
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestUnreachableAtStart: no broker at start: Open succeeds, lines wait
// (accepted, not written); a cluster then starts on the address and every
// line is produced exactly once, in order.
func TestUnreachableAtStart(t *testing.T) {
	port := freePort(t)
	addr := []string{fmt.Sprintf("127.0.0.1:%d", port)}
	s := openSink(t, addr, func(c *Config) { c.StartTimeout = 200 * time.Millisecond })
	const sources, n = 5, 400
	sendLines(s, 2, sources, 0, n)
	if st := totals(s); st.Accepted != sources*n || st.Written != 0 {
		t.Fatalf("before the broker: accepted %d written %d", st.Accepted, st.Written)
	}
	c := newCluster(t, kfake.Ports(port), kfake.SeedTopics(3, topic))
	defer c.Close()
	waitWritten(t, s, sources*n)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkOrder(t, consume(t, addr, sources*n), sources, n)
}

// TestBrokerRestart: the broker stops mid-stream and comes back on the
// same address with its data: the lines sent meanwhile are produced once
// it is back, none lost, none duplicated, each source's in order.
func TestBrokerRestart(t *testing.T) {
	port, dir := freePort(t), t.TempDir()
	addr := []string{fmt.Sprintf("127.0.0.1:%d", port)}
	opts := []kfake.Opt{kfake.Ports(port), kfake.DataDir(dir), kfake.SeedTopics(3, topic)}
	c := newCluster(t, opts...)
	s := openSink(t, addr, nil)
	const sources, n = 5, 400
	sendLines(s, 2, sources, 0, n)
	waitWritten(t, s, sources*n)
	c.Close()
	sendLines(s, 2, sources, n, n)
	c = newCluster(t, opts[:2]...)
	defer c.Close()
	waitWritten(t, s, 2*sources*n)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := totals(s); st.Written != 2*sources*n || st.DroppedTotal() != 0 {
		t.Fatalf("written %d dropped %v", st.Written, st.Dropped)
	}
	checkOrder(t, consume(t, addr, 2*sources*n), sources, 2*n)
}

// TestShutdownUnacknowledged: no broker ever: Close at its deadline drops
// every accepted line, counts it (shutdown) and says so in its error.
func TestShutdownUnacknowledged(t *testing.T) {
	s := openSink(t, []string{fmt.Sprintf("127.0.0.1:%d", freePort(t))}, func(c *Config) { c.StartTimeout = 100 * time.Millisecond })
	sendLines(s, 2, 3, 0, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := s.Close(ctx)
	st := totals(s)
	if err == nil || !strings.Contains(err.Error(), "300 accepted messages") || st.Dropped[sink.DropShutdown] != 300 || st.Written != 0 || s.inflight.Load() != 0 {
		t.Fatalf("Close: %v; written %d dropped %v in flight %d", err, st.Written, st.Dropped, s.inflight.Load())
	}
}
