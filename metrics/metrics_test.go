package metrics

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// staticSource is a fixed set of snapshots: the exposition's input as data.
type staticSource []Snapshot

func (s staticSource) Stats(dst []Snapshot) []Snapshot { return append(dst, s...) }

func TestBatchBucket(t *testing.T) {
	for n, want := range map[int]int{1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 64: 6, 65: 7, 1024: 10, 5000: 10} {
		if got := BatchBucket(n); got != want {
			t.Errorf("BatchBucket(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestCollectorGolden(t *testing.T) {
	a := Snapshot{Listener: ":5353", Proto: "udp", Shard: 0, CPU: 0, KernelDrops: 7, QueueBytes: 1536, RcvBuf: 8388608}
	a.RxPackets, a.RxBytes, a.TxPackets, a.TxBytes = 300, 19200, 290, 18560
	a.Truncated, a.HandlerErrors, a.SendErrors, a.RxErrors = 4, 6, 0, 1
	a.Batches = 3
	a.BatchSizes[0], a.BatchSizes[7] = 1, 2 // one batch of 1, two of 65..128: 200 buffers
	// 150 buffers of one datagram, 40 of two and 10 of seven (GRO): 300 datagrams.
	a.GROSegments[0], a.GROSegments[1], a.GROSegments[3] = 150, 40, 10
	a.RxBuffers = 200
	// GRO off: 100 datagrams in 100 buffers, none observed by the GRO histogram.
	b := Snapshot{Listener: ":5353", Proto: "udp", Shard: 1, CPU: 1, RcvBuf: 8388608}
	b.RxPackets, b.Batches, b.RxBuffers = 100, 1, 100
	b.BatchSizes[7] = 1
	host := func() (HostUDP, HostUDP, error) {
		return HostUDP{InErrors: 11, RcvbufErrors: 10, MemErrors: 1}, HostUDP{InErrors: 2, RcvbufErrors: 2}, nil
	}
	c := NewCollector(staticSource{a, b}, host)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	golden, err := os.Open("../testdata/metrics/collector.prom")
	if err != nil {
		t.Fatal(err)
	}
	defer golden.Close()
	if err := testutil.GatherAndCompare(reg, golden); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("promlint: %v %v", problems, err)
	}
}

func TestImbalanceOfIdleListenerIsOne(t *testing.T) {
	c := NewCollector(staticSource{{Listener: "a", Proto: "udp"}, {Listener: "a", Proto: "udp", Shard: 1}}, nil)
	if got := testutil.ToFloat64(onlyMetric(c, "shardd_shard_imbalance")); got != 1 {
		t.Fatalf("imbalance of an idle listener = %v, want 1", got)
	}
}

// onlyMetric filters a collector down to one metric name.
func onlyMetric(c prometheus.Collector, name string) prometheus.Collector {
	return filtered{c, name}
}

type filtered struct {
	c    prometheus.Collector
	name string
}

func (f filtered) Describe(ch chan<- *prometheus.Desc) { f.c.Describe(ch) }
func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { f.c.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `"`+f.name+`"`) {
			ch <- m
		}
	}
}

func TestParseSNMPFromThisKernel(t *testing.T) {
	b, err := os.ReadFile("../testdata/metrics/snmp.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSNMP(b); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile("../testdata/metrics/snmp6.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSNMP6(b); err != nil {
		t.Fatal(err)
	}
}

func TestParseSNMP(t *testing.T) {
	in := "Ip: Forwarding DefaultTTL\nIp: 1 64\n" +
		"Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n" +
		"Udp: 100 2 30 90 25 1 0 0 5\n" +
		"UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n" +
		"UdpLite: 9 9 9 9 9 9 9 9 9\n"
	h, err := ParseSNMP([]byte(in))
	if err != nil || h != (HostUDP{InDatagrams: 100, NoPorts: 2, InErrors: 30, RcvbufErrors: 25, SndbufErrors: 1, MemErrors: 5}) {
		t.Fatalf("ParseSNMP = %+v, %v", h, err)
	}
	h6, err := ParseSNMP6([]byte("Ip6InReceives 5\nUdp6InDatagrams 10\nUdp6InErrors 3\nUdp6RcvbufErrors 2\nUdpLite6InErrors 99\n"))
	if err != nil || h6 != (HostUDP{InDatagrams: 10, InErrors: 3, RcvbufErrors: 2}) {
		t.Fatalf("ParseSNMP6 = %+v, %v", h6, err)
	}
	for _, bad := range []string{"", "Udp: InErrors\n", "Udp: InErrors RcvbufErrors\nUdp: 1\n", "Udp: InErrors\nUdp: x\n"} {
		if _, err := ParseSNMP([]byte(bad)); err == nil {
			t.Errorf("ParseSNMP(%q) accepted", bad)
		}
	}
	if _, err := ParseSNMP6([]byte("Ip6InReceives 5\n")); err == nil {
		t.Error("ParseSNMP6 without Udp6 lines accepted")
	}
}

func FuzzParseSNMP(f *testing.F) {
	for _, p := range []string{"../testdata/metrics/snmp.txt", "../testdata/metrics/snmp6.txt"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseSNMP(b)
		_, _ = ParseSNMP6(b)
	})
}

// TestReadHostUDPCountsARead reads the live counters around one datagram
// received on loopback: InDatagrams must move.
func TestReadHostUDPCountsARead(t *testing.T) {
	before, _, err := ReadHostUDP()
	if err != nil {
		t.Skip("no /proc/net/snmp here:", err)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteToUDP([]byte("x"), c.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadFromUDP(make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	after, _, err := ReadHostUDP()
	if err != nil {
		t.Fatal(err)
	}
	if after.InDatagrams <= before.InDatagrams {
		t.Fatalf("InDatagrams %d -> %d after a datagram was read", before.InDatagrams, after.InDatagrams)
	}
}

// BenchmarkPublish is one UDP batch's publication: the traffic counters and
// one batch-size bucket change, errors and the TCP words do not.
func BenchmarkPublish(b *testing.B) {
	var s Shard
	var c Counts
	for i := 0; i < b.N; i++ {
		c.RxPackets += 64
		c.RxBytes += 64 * 100
		c.TxPackets += 64
		c.TxBytes += 64 * 100
		c.Batches++
		c.BatchSizes[BatchBuckets-1]++
		s.Publish(&c)
	}
}

func TestGSOBucket(t *testing.T) {
	for n, want := range map[int]int{2: 0, 3: 1, 4: 1, 5: 2, 8: 2, 9: 3, 16: 3, 17: 4, 32: 4, 33: 5, 64: 5} {
		if got := GSOBucket(n); got != want {
			t.Errorf("GSOBucket(%d) = %d, want %d", n, got, want)
		}
	}
}
