package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/shardd/shardd/packet/sink"
)

// BenchmarkProduce is the sink's path from a producer's batch to the
// brokers' acknowledgement, into a kfake cluster of 5 partitions (acks
// leader, no compression: the client's and the fake broker's work kept
// small beside the sink's): one op is one record of about 200 bytes. Its
// B/op and allocs/op include franz-go's and kfake's; compare the sink's
// changes with it, not absolute figures.
func BenchmarkProduce(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(5, topic))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s, err := Open(Config{Brokers: c.ListenAddrs(), Topic: topic, Key: testKey, Acks: AcksLeader, Compression: "none",
		Queue: sink.Config{QueueBytes: 32 << 20, BufSize: 64 << 10, FlushInterval: 5 * time.Millisecond}})
	if err != nil {
		b.Fatal(err)
	}
	p := s.NewProducer(0)
	pad := make([]byte, 190)
	for i := range pad {
		pad[i] = 'x'
	}
	var chunk []byte
	for src := range 100 {
		chunk = append(append(append(chunk, line(src, 0)[:len(line(src, 0))-1]...), pad...), '\n')
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk) / 100))
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		k := min(100, b.N-sent)
		end := 0
		for range k {
			end += firstLine(chunk[end:])
		}
		p.Write(chunk[:end], k)
		sent += k
		for st := totals(s); st.Queued() > 100000; st = totals(s) { // stay below the queue's memory
			time.Sleep(time.Millisecond)
		}
	}
	for st := totals(s); st.Written+st.DroppedTotal() < uint64(b.N); st = totals(s) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	if err := s.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	if st := totals(s); st.Written != uint64(b.N) {
		b.Fatalf("written %d of %d, dropped %v", st.Written, b.N, st.Dropped)
	}
}

// firstLine is the length of the first line of b, '\n' included.
func firstLine(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i + 1
		}
	}
	return len(b)
}
