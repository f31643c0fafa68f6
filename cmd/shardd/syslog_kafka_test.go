//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestSyslogKafkaTopicMissing: a broker answers and the topic is not
// there: shardd exits 1 with one line naming the topic and the fix.
func TestSyslogKafkaTopicMissing(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	code, stderr := runOnce(t, nil, "--handler", "syslog", "--sink", "kafka://"+c.ListenAddrs()[0]+"/nosuch", "127.0.0.1:0")
	if code != exitRuntime {
		t.Fatalf("exit %d, want %d: %s", code, exitRuntime, stderr)
	}
	assertOneLine(t, stderr, `Kafka topic "nosuch" does not exist`, "create it")
}

// TestSyslogKafkaEndToEnd: shardd produces to a kfake cluster this test
// runs; 500 datagrams from one sender are consumed back exactly once each,
// in the order sent (one key: one partition), each value the JSON record
// without a newline and the key the sender's address; the exit logs clean
// accounting. With kcat installed (librdkafka: an independent client), its
// output is compared line for line with what was sent.
func TestSyslogKafkaEndToEnd(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "syslog"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	broker := c.ListenAddrs()[0]
	d, port, metrics := startSyslog(t, "kafka://"+broker+"/syslog")
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n = 500
	msg := func(i int) string { return fmt.Sprintf("<13>1 2026-01-01T00:00:00Z h app - - - kafka message %d", i) }
	sendPaced(t, conn, metrics, n, 50, msg)
	waitSyslogMetric(t, metrics, "shardd_syslog_written_total", func(v float64) bool { return v >= n })
	checkKafkaMetrics(t, metrics, n)
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr)
	}
	if !strings.Contains(d.Stderr.String(), fmt.Sprintf(`"received":%d,"written":%d,"dropped":0`, n, n)) {
		t.Errorf("no clean accounting line:\n%s", d.Stderr)
	}
	values := consumeAll(t, broker, n)
	for i, v := range values {
		var r map[string]any
		if err := json.Unmarshal(v, &r); err != nil || bytes.HasSuffix(v, []byte("\n")) {
			t.Fatalf("record %d %q: %v", i, v, err)
		}
		if r["message"] != fmt.Sprintf("kafka message %d", i) || r["app_name"] != "app" {
			t.Fatalf("record %d = %s, want message %d", i, v, i)
		}
	}
	kcat := requireTool(t, "kcat")
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, kcat, "-C", "-b", broker, "-t", "syslog", "-e", "-q").Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("kcat read %d records, want %d", len(lines), n)
	}
	for i, l := range lines {
		if l != string(values[i]) {
			t.Fatalf("kcat record %d = %s, franz-go read %s", i, l, values[i])
		}
	}
}

// checkKafkaMetrics checks the Kafka sink's series once n records were
// acknowledged: none in flight or queued, n produce latencies observed, a
// broker connection open, n records counted over the partitions.
func checkKafkaMetrics(t *testing.T, metrics string, n int) {
	t.Helper()
	text := testkit.Scrape(t, "http://"+metrics+"/metrics")
	for name, want := range map[string]func(float64) bool{
		"shardd_sink_inflight_records":        func(v float64) bool { return v == 0 },
		"shardd_syslog_queue_depth":           func(v float64) bool { return v == 0 },
		"shardd_sink_produce_seconds_count":   func(v float64) bool { return v == float64(n) },
		"shardd_sink_broker_connections":      func(v float64) bool { return v >= 1 },
		"shardd_sink_partition_records_total": func(v float64) bool { return v == float64(n) },
		"shardd_syslog_dropped_total":         func(v float64) bool { return v == 0 },
	} {
		if !strings.Contains(text, "\n"+name) {
			t.Errorf("no series %s", name)
		} else if v := testkit.MetricSum(text, name, ""); !want(v) {
			t.Errorf("%s = %v", name, v)
		}
	}
}

// TestSyslogKafkaSCRAM: brokers that require SASL/SCRAM-SHA-512: shardd
// with --kafka-sasl and the password in a file produces every message; a
// CA file that holds no certificate is a one-line error.
func TestSyslogKafkaSCRAM(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "syslog"), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "shardd", "pw 1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	pw, notPEM := filepath.Join(dir, "pw"), filepath.Join(dir, "ca.pem")
	if os.WriteFile(pw, []byte("pw 1\n"), 0o600) != nil || os.WriteFile(notPEM, []byte("x"), 0o600) != nil {
		t.Fatal("cannot write the test files")
	}
	broker := c.ListenAddrs()[0]
	sink := "kafka://" + broker + "/syslog"
	code, stderr := runOnce(t, nil, "--handler", "syslog", "--sink", sink, "--kafka-tls-ca", notPEM, "127.0.0.1:0")
	if code != exitRuntime {
		t.Fatalf("exit %d, want %d: %s", code, exitRuntime, stderr)
	}
	assertOneLine(t, stderr, "--kafka-tls-ca "+notPEM+": no PEM certificate in it")
	d, port, metrics := startSyslog(t, sink, "--kafka-sasl", "scram-sha-512", "--kafka-sasl-user", "shardd", "--kafka-sasl-password-file", pw)
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n = 100
	sendPaced(t, conn, metrics, n, 20, func(i int) string { return fmt.Sprintf("<13>1 - h app - - - scram %d", i) })
	waitSyslogMetric(t, metrics, "shardd_syslog_written_total", func(v float64) bool { return v >= n })
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr)
	}
	if !strings.Contains(d.Stderr.String(), fmt.Sprintf(`"received":%d,"written":%d,"dropped":0`, n, n)) {
		t.Errorf("no clean accounting line:\n%s", d.Stderr)
	}
}

// consumeAll reads want records of topic syslog (60 s at most), checks
// they all have the key 127.0.0.1 and are on one partition, and returns
// their values in order.
func consumeAll(t *testing.T, broker string, want int) [][]byte {
	t.Helper()
	return consumeRecords(t, broker, want, true)
}

// consumeValues is consumeAll without the key check: the values of want
// records, in partition order.
func consumeValues(t *testing.T, broker string, want int) [][]byte {
	t.Helper()
	return consumeRecords(t, broker, want, false)
}

func consumeRecords(t *testing.T, broker string, want int, onePartition bool) [][]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("syslog"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTimeout)
	defer cancel()
	var values [][]byte
	part := int32(-1)
	hw := map[int32]int64{} // high watermarks: the records the topic holds
	for len(values) < want && ctx.Err() == nil {
		f := cl.PollFetches(ctx)
		f.EachPartition(func(p kgo.FetchTopicPartition) { hw[p.Partition] = max(hw[p.Partition], p.HighWatermark) })
		f.EachRecord(func(r *kgo.Record) {
			if string(r.Key) != "127.0.0.1" || onePartition && part >= 0 && r.Partition != part {
				t.Errorf("record key %q partition %d (first on %d)", r.Key, r.Partition, part)
			}
			part = r.Partition
			values = append(values, r.Value)
		})
	}
	var held int64
	for _, n := range hw {
		held += n
	}
	if len(values) != want || held != int64(want) {
		t.Fatalf("consumed %d records, want %d; the topic holds %d", len(values), want, held)
	}
	return values
}

// TestCheckKafkaSink: shardd check asks the brokers: ok for a topic they
// have (and produces nothing), exit 1 for one they do not.
func TestCheckKafkaSink(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "syslog"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	broker := c.ListenAddrs()[0]
	for _, tc := range []struct {
		topic string
		code  int
		want  string
	}{
		{"syslog", exitOK, "shardd check: ok: --handler syslog"},
		{"nosuch", exitRuntime, `Kafka topic "nosuch" does not exist`},
	} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"check", "--log-level", "warn", "--handler", "syslog", "--sink", "kafka://" + broker + "/" + tc.topic, "127.0.0.1:0"}, &stdout, &stderr, nil)
		if got := stdout.String() + stderr.String(); code != tc.code || !strings.Contains(got, tc.want) {
			t.Errorf("shardd check --sink kafka://.../%s: exit %d, output %q; want %d and %q", tc.topic, code, got, tc.code, tc.want)
		}
	}
	if n := consumeHeld(t, broker); n != 0 {
		t.Errorf("shardd check produced %d records", n)
	}
}

// consumeHeld is the number of records topic syslog holds (its partitions'
// high watermarks).
func consumeHeld(t *testing.T, broker string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTimeout)
	defer cancel()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "syslog"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("list offsets: %v %+v", err, resp)
	}
	return resp.Topics[0].Partitions[0].Offset
}
