package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/shardd/shardd/packet/sink"
)

// TestOversizeLimitUnknownAtStart: no broker at start, so the topic's
// limit is unknown while 3000 lines wait, one of them 5000 bytes; then a
// cluster whose limit is 2000 bytes appears. The big record is dropped and
// counted (too_large); every other one is written, in order. It failed
// before the writer waited for the brokers' answer: the client, handed the
// records at once, sent them in batches cut at the default limit, the
// broker refused the big one's batch whole, and franz-go failed every
// record of the partition with it (3000 too_large).
func TestOversizeLimitUnknownAtStart(t *testing.T) {
	port := freePort(t)
	addr := []string{fmt.Sprintf("127.0.0.1:%d", port)}
	s := openSink(t, addr, func(c *Config) { c.StartTimeout = 200 * time.Millisecond })
	const n = 3000
	writeWithBig(s, n)
	// The cluster is made (its topic's limit set) on another port, then
	// started again from its data on the sink's.
	dir := t.TempDir()
	c := newCluster(t, kfake.DataDir(dir), kfake.SeedTopics(1, topic))
	setTopicConfig(t, c.ListenAddrs(), "max.message.bytes", "2000")
	c.Close()
	c = newCluster(t, kfake.Ports(port), kfake.DataDir(dir))
	defer c.Close()
	// The sink's look at the topic's limit is held back until a record
	// batch arrived (or 3s passed): a client handed the records before the
	// limit is known sends them meanwhile.
	produced := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		close(produced)
		c.DropControl()
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.DescribeConfigs), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.SleepControl(func() {
			select {
			case <-produced:
			case <-time.After(3 * time.Second):
			}
		})
		c.DropControl()
		return nil, nil, false
	})
	deadline := time.Now().Add(60 * time.Second)
	for st := totals(s); st.Written+st.DroppedTotal() < n; st = totals(s) {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: written %d dropped %v of %d", st.Written, st.Dropped, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := totals(s)
	if st.Written != n-1 || st.Dropped[sink.DropTooLarge] != 1 || st.DroppedTotal() != 1 {
		t.Fatalf("written %d dropped %v, want %d written and 1 too_large", st.Written, st.Dropped, n-1)
	}
	if got := s.maxBytes.Load(); got != 2000 {
		t.Errorf("max bytes %d, want the broker's 2000", got)
	}
	checkWithoutBig(t, addr, n)
}

// TestTopicDeletedAfterStart: the topic is deleted while the sink runs.
// The lines given after that are dropped and counted (rejected) within
// about 4s (franz-go retries UNKNOWN_TOPIC_OR_PARTITION unknownTopicRetries
// times, a metadata refresh apart; with its defaults that took 20s), their
// memory comes back, and Close returns at once.
func TestTopicDeletedAfterStart(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(3, topic))
	defer c.Close()
	s := openSink(t, c.ListenAddrs(), func(c *Config) { c.Logger = zaptest.NewLogger(t) })
	const sources, n = 5, 200
	sendLines(s, 2, sources, 0, n)
	waitWritten(t, s, sources*n)
	deleteTopic(t, c.ListenAddrs())
	start := time.Now()
	sendLines(s, 2, sources, n, n)
	deadline := start.Add(60 * time.Second)
	for st := totals(s); st.Written+st.DroppedTotal() < 2*sources*n; st = totals(s) {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: written %d dropped %v of %d", st.Written, st.Dropped, 2*sources*n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	st := totals(s)
	t.Logf("after the topic was deleted, %d records dropped (rejected) within %v", st.Dropped[sink.DropRejected], took.Round(time.Millisecond))
	if took > 15*time.Second {
		t.Errorf("the records of a deleted topic waited %v: want about 4s (unknownTopicRetries × metadataMinAge), franz-go's defaults wait 20s", took)
	}
	if st.Written != sources*n || st.Dropped[sink.DropRejected] != sources*n || st.DroppedTotal() != sources*n {
		t.Fatalf("written %d dropped %v, want %d written and %d rejected", st.Written, st.Dropped, sources*n, sources*n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func deleteTopic(t *testing.T, brokers []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{topic}
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, dt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("delete topic: %v %+v", err, resp)
	}
}
