package kafka

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shardd/shardd/packet/sink"
)

// TestLeaderChange: three brokers; the partitions' leaders move twice while
// lines are produced: every line is written exactly once, each source's in
// order.
func TestLeaderChange(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(3), kfake.SeedTopics(3, topic))
	defer c.Close()
	s := openSink(t, c.ListenAddrs(), nil)
	const sources, n = 6, 300
	for round := range 3 {
		sendLines(s, 2, sources, round*n, n)
		if round < 2 {
			c.ShufflePartitionLeaders()
			for p := range int32(3) {
				leader := c.LeaderFor(topic, p)
				if err := c.MoveTopicPartition(topic, p, (leader+1)%3); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := totals(s); st.Written != 3*sources*n || st.DroppedTotal() != 0 {
		t.Fatalf("written %d dropped %v", st.Written, st.Dropped)
	}
	checkOrder(t, consume(t, c.ListenAddrs(), 3*sources*n), sources, 3*n)
}

// TestAccountingUnderLoad: 200000 lines (about 2 MB) from two goroutines
// into a 1 MiB queue while the broker holds back its first produce answer
// until they are all given: some are dropped (queue_full). Then accepted =
// written + dropped, the topic holds exactly the written ones (no
// duplicates), each source's in increasing order.
func TestAccountingUnderLoad(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(4, topic))
	defer c.Close()
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	s := openSink(t, c.ListenAddrs(), func(c *Config) { c.Queue.QueueBytes, c.Queue.BufSize = 1<<20, 16<<10 })
	const sources, n = 10, 20000
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			p := s.NewProducer(g)
			var b []byte
			for seq := range n {
				b = b[:0]
				for src := g * sources / 2; src < (g+1)*sources/2; src++ {
					b = append(b, line(src, seq)...)
				}
				p.Write(b, sources/2)
			}
		})
	}
	wg.Wait()
	close(release)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := totals(s)
	t.Logf("accepted %d, written %d, dropped %v", st.Accepted, st.Written, st.Dropped)
	if st.Accepted != sources*n || st.Dropped[sink.DropQueueFull] == 0 || st.Written+st.Dropped[sink.DropQueueFull] != st.Accepted || st.DroppedTotal() != st.Dropped[sink.DropQueueFull] {
		t.Fatalf("accepted %d written %d dropped %v", st.Accepted, st.Written, st.Dropped)
	}
	last := map[string]int{}
	for _, r := range consume(t, c.ListenAddrs(), int(st.Written)) {
		var src string
		var seq int
		if _, err := fmt.Sscanf(string(r.Value), "%s %d", &src, &seq); err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[src]; ok && seq <= prev {
			t.Fatalf("source %s: %d after %d", src, seq, prev)
		}
		last[src] = seq
	}
}

// TestRealBroker produces to the Kafka brokers in SHARDD_KAFKA_BROKERS
// (host:port,...; topic SHARDD_KAFKA_TOPIC, default shardd-test, which must
// exist) and reads its records back from the offsets the topic had before.
// Skipped when SHARDD_KAFKA_BROKERS is not set.
func TestRealBroker(t *testing.T) {
	env := os.Getenv("SHARDD_KAFKA_BROKERS")
	if env == "" {
		t.Skip("SHARDD_KAFKA_BROKERS not set (e.g. 127.0.0.1:9092): no real broker to test against")
	}
	name := os.Getenv("SHARDD_KAFKA_TOPIC")
	if name == "" {
		name = "shardd-test"
	}
	brokers := strings.Split(env, ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	starts := endOffsetsOf(t, ctx, cl, name)
	cl.Close()
	s := openSink(t, brokers, func(c *Config) { c.Topic = name })
	const sources, n = 4, 500
	sendLines(s, 2, sources, 0, n)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	from := map[int32]kgo.Offset{}
	for p, o := range starts {
		from[p] = kgo.NewOffset().At(o)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{name: from}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var recs []*kgo.Record
	for len(recs) < sources*n && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	checkOrder(t, recs, sources, n)
}
