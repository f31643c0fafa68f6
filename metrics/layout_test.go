package metrics

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// word is one uint64 of Counts, found by reflection (not from countsTable).
type word struct {
	field string
	index int // within an array field; 0 for a scalar
	value uint64
}

// distinctCounts sets every word of a Counts, in field order, to its own
// value (1001, 1002, ...) and lists them.
func distinctCounts(t *testing.T) (Counts, []word) {
	t.Helper()
	var c Counts
	var words []word
	v := reflect.ValueOf(&c).Elem()
	for i := 0; i < v.NumField(); i++ {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.Uint64:
			words = append(words, word{name, 0, uint64(1001 + len(words))})
			f.SetUint(words[len(words)-1].value)
		case reflect.Array:
			for j := 0; j < f.Len(); j++ {
				words = append(words, word{name, j, uint64(1001 + len(words))})
				f.Index(j).SetUint(words[len(words)-1].value)
			}
		default:
			t.Fatalf("Counts.%s is a %s: the test knows uint64 words and arrays of them", name, f.Kind())
		}
	}
	return c, words
}

// TestPublishLoad: every word of Counts, TCP ones included,
// survives Publish and Load, and the table lists every field once, in the
// order of the struct.
func TestPublishLoad(t *testing.T) {
	c, words := distinctCounts(t)
	if len(words) != countsWords {
		t.Fatalf("Counts has %d words, countsWords is %d", len(words), countsWords)
	}
	var s Shard
	s.Publish(&c)
	if got := s.Load(); got != c {
		t.Fatalf("Load() = %+v, want %+v", got, c)
	}
	other := Counts{RxPackets: 1, Accepted: 2}
	other.AcceptErrors[AcceptOther] = 3
	s.Publish(&other) // another Counts: s follows it
	if got := s.Load(); got != other {
		t.Fatalf("after publishing another Counts, Load() = %+v, want %+v", got, other)
	}
	c.RxPackets++
	s.Publish(&c) // and back
	if got := s.Load(); got != c {
		t.Fatalf("after publishing the first Counts again, Load() = %+v, want %+v", got, c)
	}
	var names, want []string
	for _, f := range countsTable {
		names = append(names, f.name)
	}
	for _, w := range words {
		if len(want) == 0 || want[len(want)-1] != w.field {
			want = append(want, w.field)
		}
	}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("countsTable lists %v, Counts has %v", names, want)
	}
}

// exposed names the series of each Counts word on a shard of each
// transport: the metric, and the label that tells an array's elements apart.
var exposed = map[string]map[string]struct{ metric, label string }{
	"": {
		"RxPackets": {"shardd_rx_packets_total", ""}, "RxBytes": {"shardd_rx_bytes_total", ""},
		"TxPackets": {"shardd_tx_packets_total", ""}, "TxBytes": {"shardd_tx_bytes_total", ""},
		"Truncated": {"shardd_truncated_total", ""}, "HandlerErrors": {"shardd_handler_errors_total", ""},
		"SendErrors": {"shardd_send_errors_total", ""}, "RxErrors": {"shardd_rx_errors_total", ""},
	},
	"tcp": {
		"Accepted": {"shardd_tcp_accepted_total", ""}, "Closed": {"shardd_tcp_closed_total", "reason"},
		"DiscardedBytes": {"shardd_tcp_discarded_bytes_total", ""}, "UnsentPackets": {"shardd_tcp_unsent_replies_total", ""},
		"UnsentBytes": {"shardd_tcp_unsent_bytes_total", ""}, "EmptyFrames": {"shardd_tcp_empty_frames_total", ""},
		"AcceptErrors": {"shardd_tcp_accept_errors_total", "errno"},
	},
	"tls": { // and the "tcp" ones
		"TLSHandshakes": {"shardd_tls_handshakes_total", "result"}, "TLSResumed": {"shardd_tls_resumed_total", ""},
		"TLSVersions": {"shardd_tls_connections_total", "version"},
		"TLSCiphers":  {"shardd_tls_cipher_connections_total", "cipher"},
	},
}

// TestExpositionEveryWord gives every word of a shard's Counts its own
// value and finds each on the exposition: on a TCP shard every word but the
// UDP batch ones is the value of exactly one series (the right one); on a
// UDP shard the common words are, the batch and GRO words make the two
// histograms, and no TCP word shows.
func TestExpositionEveryWord(t *testing.T) {
	for _, proto := range []string{"tcp", "udp", "tls"} {
		t.Run(proto, func(t *testing.T) {
			c, words := distinctCounts(t)
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(NewCollector(staticSource{{Listener: ":53", Proto: proto, Counts: c}}, nil))
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			times := map[float64]int{}        // how many plain series carry each value
			var hist, gro, gso *dto.Histogram // shardd_rx_batch_size, shardd_rx_gro_segments, shardd_tx_gso_segments
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					switch {
					case m.Counter != nil:
						times[m.Counter.GetValue()]++
					case m.Gauge != nil:
						times[m.Gauge.GetValue()]++
					case m.Histogram != nil && mf.GetName() == "shardd_rx_gro_segments":
						gro = m.Histogram
					case m.Histogram != nil && mf.GetName() == "shardd_tx_gso_segments":
						gso = m.Histogram
					case m.Histogram != nil:
						hist = m.Histogram
					}
				}
			}
			var cum, groCum, gsoCum uint64
			for _, w := range words {
				where, ok := exposed[""][w.field]
				if !ok {
					where, ok = exposed[proto][w.field]
				}
				if !ok && proto == "tls" {
					where, ok = exposed["tcp"][w.field]
				}
				label := ""
				switch w.field {
				case "Closed":
					label = CloseReason(w.index).String()
				case "AcceptErrors":
					label = AcceptErrno(w.index).String()
				case "TLSHandshakes":
					label = TLSResult(w.index).String()
				case "TLSVersions":
					label = TLSVersion(w.index).String()
				case "TLSCiphers":
					label = TLSCipher(w.index).String()
				}
				switch {
				case ok:
					if n := times[float64(w.value)]; n != 1 {
						t.Errorf("%s[%d] = %d is the value of %d series, want 1", w.field, w.index, w.value, n)
					}
					if got, found := sample(mfs, where.metric, where.label, label); !found || got != float64(w.value) {
						t.Errorf("%s[%d]: %s{%s=%q} = %v (found %v), want %d", w.field, w.index, where.metric, where.label, label, got, found, w.value)
					}
				case proto == "udp" && w.field == "Batches":
					if hist.GetSampleCount() != w.value {
						t.Errorf("histogram count %d, Batches %d", hist.GetSampleCount(), w.value)
					}
				case proto == "udp" && w.field == "BatchSizes":
					cum += w.value
					if b := hist.GetBucket()[w.index]; b.GetCumulativeCount() != cum || b.GetUpperBound() != float64(uint(1)<<w.index) {
						t.Errorf("bucket %d: le=%v count %d, want le=%d count %d", w.index, b.GetUpperBound(), b.GetCumulativeCount(), 1<<w.index, cum)
					}
				case proto == "udp" && w.field == "GROSegments":
					groCum += w.value
					if b := gro.GetBucket()[w.index]; b.GetCumulativeCount() != groCum || b.GetUpperBound() != float64(uint(1)<<w.index) {
						t.Errorf("GRO bucket %d: le=%v count %d, want le=%d count %d", w.index, b.GetUpperBound(), b.GetCumulativeCount(), 1<<w.index, groCum)
					}
				case proto == "udp" && w.field == "TxGSOSends":
					gsoCum += w.value
					if b := gso.GetBucket()[w.index]; b.GetCumulativeCount() != gsoCum || b.GetUpperBound() != float64(uint(2)<<w.index) {
						t.Errorf("GSO bucket %d: le=%v count %d, want le=%d count %d", w.index, b.GetUpperBound(), b.GetCumulativeCount(), 2<<w.index, gsoCum)
					}
				case proto == "udp" && w.field == "TxGSODatagrams":
					if gso.GetSampleSum() != float64(w.value) {
						t.Errorf("GSO histogram sum %v, TxGSODatagrams %d", gso.GetSampleSum(), w.value)
					}
				default:
					if n := times[float64(w.value)]; n != 0 {
						t.Errorf("%s[%d] = %d shows on %d series of a %s shard, want none", w.field, w.index, w.value, n, proto)
					}
				}
			}
			if (proto == "udp") != (hist != nil) || (proto == "udp") != (gro != nil) {
				t.Fatalf("%s shard: batch histogram exposed %v, GRO histogram %v", proto, hist != nil, gro != nil)
			}
			if proto != "udp" {
				return
			}
			// Buffers: the batch histogram's sum; the GRO histogram counts
			// its observations.
			if gro.GetSampleCount() != groCum || hist.GetSampleSum() != float64(c.RxBuffers) {
				t.Errorf("GRO histogram count %d (want %d), batch histogram sum %v (want RxBuffers %d)", gro.GetSampleCount(), groCum, hist.GetSampleSum(), c.RxBuffers)
			}
			if gro.GetSampleSum() != float64(c.RxPackets) {
				t.Errorf("GRO histogram sum %v, RxPackets %d", gro.GetSampleSum(), c.RxPackets)
			}
			if gso.GetSampleCount() != gsoCum {
				t.Errorf("GSO histogram count %d, want the sends' sum %d", gso.GetSampleCount(), gsoCum)
			}
		})
	}
}

// sample is the value of the series of metric whose label name (if not "")
// is value.
func sample(mfs []*dto.MetricFamily, metric, name, value string) (float64, bool) {
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := name == ""
			for _, lp := range m.GetLabel() {
				match = match || (lp.GetName() == name && lp.GetValue() == value)
			}
			if match {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// changingSource serves the snapshots of its current phase.
type changingSource struct{ snaps []Snapshot }

func (s *changingSource) Stats(dst []Snapshot) []Snapshot { return append(dst, s.snaps...) }

// TestDescribedEqualsCollected: the Collector describes exactly what it
// may collect. A pedantic registry (it checks every collected series
// against the descs the collector described when it was registered)
// gathers while the series that come and go (TCP shards, socket inodes,
// accept errnos, host counters) appear and disappear; with all of them
// there, the collected descs are the described ones.
func TestDescribedEqualsCollected(t *testing.T) {
	src := &changingSource{}
	hostErr := fmt.Errorf("no /proc")
	host := func() (HostUDP, HostUDP, error) { return HostUDP{InErrors: 1}, HostUDP{}, hostErr }
	c := NewCollector(src, host)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c) // registered while there are no shards and the host counters fail

	udp := Snapshot{Listener: ":53", Proto: "udp"}
	tcp := Snapshot{Listener: ":53", Proto: "tcp", Shard: 1, Inode: 4242}
	tcp.AcceptErrors[AcceptEMFILE] = 3
	tls := Snapshot{Listener: ":853", Proto: "tls", Inode: 4343}
	xdp := Snapshot{Listener: ":53@veth0", Proto: "xdp"}
	phases := []struct {
		name    string
		snaps   []Snapshot
		hostErr error
	}{
		{"udp", []Snapshot{udp}, hostErr},
		{"udp+tcp, host counters", []Snapshot{udp, tcp}, nil},
		{"none", nil, hostErr},
		{"tcp", []Snapshot{tcp}, nil},
		{"udp+tcp+tls", []Snapshot{udp, tcp, tls}, nil},
		{"udp+xdp", []Snapshot{udp, xdp}, nil},
	}
	for _, p := range phases {
		src.snaps, hostErr = p.snaps, p.hostErr
		_, err := reg.Gather()
		var errs prometheus.MultiError // Gather unwraps a single error
		if err != nil && !errors.As(err, &errs) {
			errs = prometheus.MultiError{err}
		}
		for _, e := range errs {
			if p.hostErr == nil || !strings.Contains(e.Error(), p.hostErr.Error()) {
				t.Errorf("%s: %v", p.name, e)
			}
		}
	}

	src.snaps, hostErr = []Snapshot{udp, tcp, tls, xdp}, nil
	described := descStrings(c.Describe)
	collected := descStrings(func(ch chan<- *prometheus.Desc) {
		mc := make(chan prometheus.Metric)
		go func() { c.Collect(mc); close(mc) }()
		for m := range mc {
			ch <- m.Desc()
		}
	})
	if fmt.Sprint(described) != fmt.Sprint(collected) {
		t.Fatalf("described %d descs:\n%v\ncollected %d:\n%v", len(described), described, len(collected), collected)
	}
	if n := len(descStrings(NewCollector(src, nil).Describe)); n != len(described)-4 {
		t.Errorf("without host counters %d descs described, want %d", n, len(described)-4)
	}
}

// descStrings runs send and returns the distinct descs it sent, sorted.
func descStrings(send func(chan<- *prometheus.Desc)) []string {
	ch := make(chan *prometheus.Desc)
	go func() { send(ch); close(ch) }()
	set := map[string]bool{}
	for d := range ch {
		set[d.String()] = true
	}
	var out []string
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
