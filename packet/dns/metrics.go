package dns

import (
	"strconv"
	"sync/atomic"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// qtypeLabels are the qtypes counted by name; the rest count as "other", so
// a scan with random types cannot blow up the number of series.
var qtypeLabels = [...]uint16{
	mdns.TypeA, mdns.TypeNS, mdns.TypeCNAME, mdns.TypeSOA, mdns.TypePTR, mdns.TypeMX,
	mdns.TypeTXT, mdns.TypeAAAA, mdns.TypeSRV, mdns.TypeNAPTR, mdns.TypeDS, mdns.TypeDNSKEY,
	mdns.TypeSVCB, mdns.TypeHTTPS, mdns.TypeCAA, mdns.TypeANY, mdns.TypeAXFR, mdns.TypeIXFR,
}

const numQtypeLabels = len(qtypeLabels) + 1 // + "other"

// qtypeIndex maps a qtype below 256 to its label; CAA (257) is the one
// counted type above.
var qtypeIndex = func() (t [256]uint8) {
	for i := range t {
		t[i] = uint8(numQtypeLabels - 1)
	}
	for i, q := range qtypeLabels {
		if q < 256 {
			t[q] = uint8(i)
		}
	}
	return t
}()

func qtypeLabel(q uint16) int {
	if q < 256 {
		return int(qtypeIndex[q])
	}
	if q == mdns.TypeCAA {
		return caaLabel
	}
	return numQtypeLabels - 1
}

// caaLabel is CAA's index in qtypeLabels (the one counted type above 255).
var caaLabel = func() int {
	for i, l := range qtypeLabels {
		if l == mdns.TypeCAA {
			return i
		}
	}
	panic("dns: CAA missing from qtypeLabels")
}()

func qtypeName(i int) string {
	if i == numQtypeLabels-1 {
		return "other"
	}
	return mdns.TypeToString[qtypeLabels[i]]
}

func rcodeName(r int) string {
	if r == mdns.RcodeBadVers {
		return "BADVERS" // 16 is also TSIG's BADSIG; a query answer means BADVERS
	}
	if s, ok := mdns.RcodeToString[r]; ok {
		return s
	}
	return strconv.Itoa(r)
}

var (
	descQueries = prometheus.NewDesc("shardd_dns_queries_total",
		"DNS queries with a question, by shard, transport and qtype (types without a label of their own count as other).",
		[]string{"shard", "proto", "qtype"}, nil)
	descResponses = prometheus.NewDesc("shardd_dns_responses_total",
		"DNS responses sent, by shard, transport and rcode.", []string{"shard", "proto", "rcode"}, nil)
	descTruncated = prometheus.NewDesc("shardd_dns_truncated_total",
		"Responses sent with TC set because the answer did not fit the client's UDP payload size (the client retries over TCP).",
		[]string{"shard", "proto"}, nil)
	descMalformed = prometheus.NewDesc("shardd_dns_malformed_total",
		"Malformed queries: answered FORMERR, or dropped when shorter than a header.", []string{"shard", "proto"}, nil)
	descDropped = prometheus.NewDesc("shardd_dns_dropped_total",
		"Messages not answered, by reason: response (QR set: replies are never answered), short (no header).",
		[]string{"shard", "proto", "reason"}, nil)
	descRRLLimited = prometheus.NewDesc("shardd_dns_rrl_limited_total",
		"UDP responses over the rate limit (--rrl-rate), dropped or slipped, by shard and response class.",
		[]string{"shard", "class"}, nil)
	descRRLSlipped = prometheus.NewDesc("shardd_dns_rrl_slipped_total",
		"Rate-limited UDP responses sent anyway, empty with TC set (or BADCOOKIE to a client with a cookie), by shard (--rrl-slip).",
		[]string{"shard"}, nil)
	descReloads = prometheus.NewDesc("shardd_dns_zone_reloads_total",
		"Successful zone reloads (SIGHUP).", nil, nil)
	descReloadErrors = prometheus.NewDesc("shardd_dns_zone_reload_errors_total",
		"Zone reloads that failed; the previous zones kept serving.", nil, nil)
	descSerial = prometheus.NewDesc("shardd_dns_zone_serial",
		"SOA serial of each zone being served.", []string{"zone"}, nil)
	descRecords = prometheus.NewDesc("shardd_dns_zone_records",
		"Records loaded for each zone being served.", []string{"zone"}, nil)
	// One series set for both directions: their result words differ, so a
	// zone both transferred in and served out never repeats a series.
	descTransfers = prometheus.NewDesc("shardd_dns_transfers_total",
		"Zone transfers by zone, type (axfr, ixfr) and result. In (secondary zones): ok, failed. "+
			"Out (to secondaries): sent, full (IXFR answered with the whole zone), uptodate (IXFR answered with the SOA alone), "+
			"refused (not in --allow-transfer; or the zone expired, answered SERVFAIL), badkey (TSIG did not verify), cut (broken off mid-way: client gone, write timeout).",
		[]string{"zone", "type", "result"}, nil)
)

// Describe implements prometheus.Collector.
func (s *Server) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueries, descResponses, descTruncated, descMalformed, descDropped, descRRLLimited, descRRLSlipped, descReloads, descReloadErrors, descSerial, descRecords, descZoneInfo, descTransfers} {
		ch <- d
	}
	s.describeSecondaries(ch)
}

// Collect implements prometheus.Collector: it reads every handler's
// counters (summed per shard and transport) at scrape time.
func (s *Server) Collect(ch chan<- prometheus.Metric) {
	type key struct{ shard, proto int }
	sums := map[key]*tally[uint64]{}
	var order []key
	s.mu.Lock()
	for _, h := range s.handlers {
		for p := range h.pub {
			k := key{h.shard, p}
			if sums[k] == nil {
				sums[k] = &tally[uint64]{}
				order = append(order, k)
			}
			addPublished(sums[k], &h.pub[p])
		}
	}
	s.mu.Unlock()
	for _, k := range order {
		v := sums[k]
		if total(v) == 0 && k.proto == 1 {
			continue // no TCP traffic on this shard: no series
		}
		shard, proto := strconv.Itoa(k.shard), []string{"udp", "tcp"}[k.proto]
		for i, n := range v.queries {
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(descQueries, prometheus.CounterValue, float64(n), shard, proto, qtypeName(i))
			}
		}
		for r, n := range v.responses {
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(descResponses, prometheus.CounterValue, float64(n), shard, proto, rcodeName(r))
			}
		}
		ch <- prometheus.MustNewConstMetric(descTruncated, prometheus.CounterValue, float64(v.truncated), shard, proto)
		ch <- prometheus.MustNewConstMetric(descMalformed, prometheus.CounterValue, float64(v.malformed), shard, proto)
		for r, n := range v.dropped {
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(n), shard, proto, dropReason(r).String())
		}
		if s.rrl != nil && k.proto == 0 {
			collectRRL(ch, shard, v)
		}
	}
	ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(s.reloads.Load()))
	ch <- prometheus.MustNewConstMetric(descReloadErrors, prometheus.CounterValue, float64(s.reloadErrors.Load()))
	for _, z := range s.zones.Load().List {
		ch <- prometheus.MustNewConstMetric(descSerial, prometheus.GaugeValue, float64(z.Serial), z.Origin)
		ch <- prometheus.MustNewConstMetric(descRecords, prometheus.GaugeValue, float64(z.Count), z.Origin)
	}
	s.collectSecondaries(ch)
	s.collectPrimary(ch)
}

// collectRRL sends one shard's rate limiter counts (UDP only).
func collectRRL(ch chan<- prometheus.Metric, shard string, v *tally[uint64]) {
	for c, n := range v.limited {
		ch <- prometheus.MustNewConstMetric(descRRLLimited, prometheus.CounterValue, float64(n), shard, rrlClass(c).String())
	}
	ch <- prometheus.MustNewConstMetric(descRRLSlipped, prometheus.CounterValue, float64(v.slipped), shard)
}

// addPublished adds the published counts c to v.
func addPublished(v *tally[uint64], c *tally[atomic.Uint64]) {
	for i := range c.queries {
		v.queries[i] += c.queries[i].Load()
	}
	for i := range c.responses {
		v.responses[i] += c.responses[i].Load()
	}
	v.truncated += c.truncated.Load()
	v.malformed += c.malformed.Load()
	for i := range c.dropped {
		v.dropped[i] += c.dropped[i].Load()
	}
	for i := range c.limited {
		v.limited[i] += c.limited[i].Load()
	}
	v.slipped += c.slipped.Load()
}

// RRLStats are the rate limiter's counts over every shard, as published.
type RRLStats struct {
	Limited map[string]uint64 // by response class
	Slipped uint64
}

// RRLStats sums what every handler has published (for the daemon's
// summary log line).
func (s *Server) RRLStats() RRLStats {
	st := RRLStats{Limited: map[string]uint64{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.handlers {
		for c := range h.pub[0].limited {
			if n := h.pub[0].limited[c].Load(); n > 0 {
				st.Limited[rrlClass(c).String()] += n
			}
		}
		st.Slipped += h.pub[0].slipped.Load()
	}
	return st
}

// total is every message answered or dropped.
func total(v *tally[uint64]) uint64 {
	var n uint64
	for _, r := range v.responses {
		n += r
	}
	for _, d := range v.dropped {
		n += d
	}
	return n
}

var _ prometheus.Collector = (*Server)(nil)
