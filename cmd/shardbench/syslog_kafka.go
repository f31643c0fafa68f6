package main

// The syslog mode's Kafka contenders: shardd --sink kafka:// and rsyslogd
// with omkafka (librdkafka) into a kfake cluster (franz-go's in-process
// fake Kafka) run by shardbench on loopback, the honest local stand-in for
// a broker: it shares the CPUs with the servers, and keeps no disk. Both
// produce the same JSON records, keyed by the sender's address, lz4, acks
// all, idempotent, 10ms linger. Each probe gets a topic of its own
// (created before, deleted after); a record counts when the topic holds it
// (the sum of its partitions' high watermarks).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaBench is the kfake cluster of a syslog mode run and a client to it.
type kafkaBench struct {
	cluster *kfake.Cluster
	cl      *kgo.Client
}

func newKafkaBench() (*kafkaBench, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		c.Close()
		return nil, err
	}
	return &kafkaBench{cluster: c, cl: cl}, nil
}

func (k *kafkaBench) close() {
	k.cl.Close()
	k.cluster.Close()
}

// topicFor names the probe's topic after its output path's directory.
func topicFor(out string) string { return filepath.Base(filepath.Dir(out)) }

// server is the contender: shardd with a shard per CPU producing to a
// fresh topic of 4 partitions.
func (k *kafkaBench) server(shardd string) syslogServer {
	return syslogServer{
		Name: fmt.Sprintf("shardd %d shards → Kafka (kfake)", runtime.GOMAXPROCS(0)),
		command: func(dir, out string, port int) ([]string, error) {
			topic := topicFor(out)
			if out != "FILE" { // command2's placeholders create nothing
				if err := k.topic(topic, true); err != nil {
					return nil, err
				}
			}
			return []string{shardd, "--handler", "syslog", "--sink", "kafka://" + k.cluster.ListenAddrs()[0] + "/" + topic, "--log-level", "warn", fmt.Sprintf("127.0.0.1:%d", port)}, nil
		},
		written: k.written,
		done:    k.done,
	}
}

// omkafkaGlob finds rsyslog's Kafka output module (Debian: rsyslog-kafka).
const omkafkaGlob = "/usr/lib/*/rsyslog/omkafka.so"

// rsyslog is rsyslogd into the same cluster with omkafka, tuned as shardd
// is; false if the module is not installed.
func (k *kafkaBench) rsyslog(rsyslogd string) (syslogServer, bool) {
	if m, _ := filepath.Glob(omkafkaGlob); len(m) == 0 {
		return syslogServer{}, false
	}
	ncpu := runtime.GOMAXPROCS(0)
	return syslogServer{
		Name: fmt.Sprintf("rsyslogd imudp (%d threads) → omkafka (kfake)", ncpu),
		command: func(dir, out string, port int) ([]string, error) {
			topic := topicFor(out)
			if err := k.topic(topic, true); err != nil {
				return nil, err
			}
			conf := filepath.Join(dir, "rsyslog.conf")
			err := os.WriteFile(conf, []byte(rsyslogKafkaConf(dir, k.cluster.ListenAddrs()[0], topic, port, ncpu)), 0o644)
			return []string{rsyslogd, "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid")}, err
		},
		written: k.written,
		done:    k.done,
	}, true
}

// rsyslogKafkaConf is rsyslogConf with omkafka instead of omfile: the
// record keyed by the sender's address (as shardd's --kafka-key source),
// librdkafka set as shardd's client (lz4, 10ms linger, acks all,
// idempotent), and up to 10s at exit for the acknowledgements.
func rsyslogKafkaConf(dir, broker, topic string, port, threads int) string {
	return rsyslogInput(dir, port, threads) + fmt.Sprintf(`module(load="omkafka")
template(name="key" type="string" string="%%fromhost-ip%%")
ruleset(name="out" queue.type="FixedArray" queue.size="100000") {
  action(type="omkafka" broker=[%q] topic=%q template="json" key="key" dynaKey="on" partitions.auto="on" closeTimeout="10000"
    confParam=["compression.codec=lz4", "linger.ms=10", "acks=all", "enable.idempotence=true"])
}
`, broker, topic)
}

// topic creates (or deletes) a topic.
func (k *kafkaBench) topic(name string, create bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !create {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TopicNames = []string{name}
		_, err := req.RequestWith(ctx, k.cl)
		return err
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, 4, 1
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, k.cl)
	if err == nil && resp.Topics[0].ErrorCode != 0 {
		err = fmt.Errorf("create topic %s: error code %d", name, resp.Topics[0].ErrorCode)
	}
	return err
}

// done deletes the probe's topic (kfake keeps records in memory).
func (k *kafkaBench) done(out string) { _ = k.topic(topicFor(out), false) }

// written is how many records the probe's topic holds.
func (k *kafkaBench) written(out string) (uint64, error) {
	name := topicFor(out)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = name
	for p := range int32(4) {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	var n uint64
	for _, shard := range k.cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			return 0, shard.Err
		}
		for _, t := range shard.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				n += uint64(max(p.Offset, 0))
			}
		}
	}
	return n, nil
}
