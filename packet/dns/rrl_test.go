package dns

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shardd/shardd/packet"
)

// fakeClock is the limiter's clock in a test: it moves only when told.
type fakeClock struct{ ns int64 }

func (c *fakeClock) now() int64 { return c.ns }

// rrlServer is the example zones with RRL on, on a clock the test moves.
func rrlServer(t testing.TB, c RRLConfig) (*Server, *fakeClock) {
	t.Helper()
	s := newTestServer(t)
	if c.IPv4Prefix == 0 {
		c.IPv4Prefix, c.IPv6Prefix = 24, 56
	}
	if c.Window == 0 {
		c.Window = time.Second
	}
	if err := s.EnableRRL(c); err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{}
	s.rrl.now = clk.now
	return s, clk
}

// udpQueue is serveFrom's reply queue (tests of this package are not parallel).
var udpQueue = packet.NewReplyQueue(4, 4*65536, 65507)

// serveFrom serves raw from src over UDP and returns the reply (nil: none).
func serveFrom(t testing.TB, h *Handler, raw []byte, src string) *mdns.Msg {
	t.Helper()
	q := udpQueue
	q.Reset()
	p := &packet.Packet{Data: raw, Src: netip.MustParseAddrPort(src), Proto: packet.UDP}
	if err := h.ServePacket(q.Begin(p), p); err != nil {
		t.Fatalf("ServePacket: %v", err)
	}
	h.Publish() // a batch of one: the limiter reads its clock again
	if len(q.Replies()) == 0 {
		return nil
	}
	r := new(mdns.Msg)
	if err := r.Unpack(q.Replies()[0].Data); err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	return r
}

func packed(t testing.TB, name string, qtype uint16, edns bool) []byte {
	t.Helper()
	q := newQuery(name, qtype)
	if edns {
		q.SetEdns0(1232, false)
	}
	raw, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// floodTally counts what a flood drew.
type floodTally struct{ answered, slipped, dropped, bytesIn, bytesOut int }

func (f *floodTally) add(t *testing.T, raw []byte, r *mdns.Msg) {
	t.Helper()
	f.bytesIn += len(raw)
	switch {
	case r == nil:
		f.dropped++
	case r.Truncated:
		if len(r.Answer)+len(r.Ns) != 0 || len(r.Extra) != 1 || r.Rcode != mdns.RcodeSuccess {
			t.Fatalf("slipped reply not empty: %v", r)
		}
		f.slipped++
		f.bytesOut += r.Len()
	default:
		f.answered++
		f.bytesOut += r.Len()
	}
}

// TestRRLFloodLimitedToRate floods one name from one /24 (eight addresses,
// many ports, both shards' handlers: one shared table) at ten times the
// rate for 10 s of the limiter's clock, one query per 200 us, while another
// /24 asks at half the rate and an exempt /24 floods too. The flooding
// prefix gets the rate (plus one window's burst), every other limited reply
// is slipped (TC, empty), the others get every answer.
func TestRRLFloodLimitedToRate(t *testing.T) {
	const rate, seconds = 500, 10
	s, clk := rrlServer(t, RRLConfig{Rate: rate, Slip: 2, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.2.0/24")}})
	shards := []*Handler{s.NewHandler(0), s.NewHandler(1)}
	raw := packed(t, "example.com.", mdns.TypeTXT, true)
	var flood, other, exempt floodTally
	const step = 200 * time.Microsecond // 5,000 queries/s: 10 x the rate
	for i := range int(seconds * time.Second / step) {
		clk.ns = int64(i) * int64(step)
		src := fmt.Sprintf("127.0.0.%d:%d", 1+i%8, 1024+i%50000)
		flood.add(t, raw, serveFrom(t, shards[i%2], raw, src))
		if i%20 == 0 { // 250/s
			other.add(t, raw, serveFrom(t, shards[i%2], raw, fmt.Sprintf("127.0.1.%d:5300", i%200)))
		}
		if i%2 == 0 {
			exempt.add(t, raw, serveFrom(t, shards[i%2], raw, "127.0.2.7:5300"))
		}
	}
	// A full bucket holds rate x window (1 s) responses; then the rate.
	got := float64(flood.answered-rate) / seconds
	t.Logf("flood: %d answered (%.1f/s after the first window's burst of %d; rate %d), %d slipped, %d dropped; amplification %.2f (bytes out/in)",
		flood.answered, got, rate, rate, flood.slipped, flood.dropped, float64(flood.bytesOut)/float64(flood.bytesIn))
	if got < 0.9*rate || got > 1.1*rate {
		t.Errorf("flooding /24 got %.1f answers/s, want %d within 10%%", got, rate)
	}
	limited := flood.slipped + flood.dropped
	if flood.slipped != limited/2 {
		t.Errorf("%d slipped of %d limited, want every 2nd", flood.slipped, limited)
	}
	if other.slipped+other.dropped != 0 || exempt.slipped+exempt.dropped != 0 {
		t.Errorf("other /24: %+v; exempt /24: %+v; want every query answered", other, exempt)
	}
	for _, h := range shards {
		h.Publish()
	}
	want := fmt.Sprintf(`
# HELP shardd_dns_rrl_slipped_total Rate-limited UDP responses sent anyway, empty with TC set (or BADCOOKIE to a client with a cookie), by shard (--rrl-slip).
# TYPE shardd_dns_rrl_slipped_total counter
shardd_dns_rrl_slipped_total{shard="0"} %d
shardd_dns_rrl_slipped_total{shard="1"} %d
`, s.handlers[0].c[0].slipped, s.handlers[1].c[0].slipped)
	if err := testutil.CollectAndCompare(s, strings.NewReader(want), "shardd_dns_rrl_slipped_total"); err != nil {
		t.Error(err)
	}
	st := s.RRLStats()
	if st.Slipped != uint64(flood.slipped) || st.Limited["positive"] != uint64(limited) || len(st.Limited) != 1 {
		t.Errorf("RRLStats %+v, want %d slipped, %d positive limited", st, flood.slipped, limited)
	}
}

// TestRRLClassesKeepApart: an NXDOMAIN flood with random names from one
// prefix fills one bucket (the zone's), and that prefix's positive answers,
// referrals and wildcard answers keep their own buckets; a TCP query is
// never limited.
func TestRRLClassesKeepApart(t *testing.T) {
	s, clk := rrlServer(t, RRLConfig{Rate: 10, Slip: 0})
	h := s.NewHandler(0)
	const src = "127.0.0.9:4000"
	limitedAt := -1
	for i := range 100 {
		clk.ns = int64(i) * int64(time.Millisecond)
		raw := packed(t, fmt.Sprintf("nx%d.example.com.", i), mdns.TypeA, false)
		if serveFrom(t, h, raw, src) == nil && limitedAt < 0 {
			limitedAt = i
		}
	}
	if limitedAt != 10 {
		t.Fatalf("random NXDOMAIN names: first limited at query %d, want 10 (one bucket for the zone)", limitedAt)
	}
	if r := ask(t, h, newQuery("nx-tcp.example.com.", mdns.TypeA), packet.TCP); r.Rcode != mdns.RcodeNameError {
		t.Errorf("over TCP: %v", r)
	}
	for _, q := range []struct {
		name  string
		qtype uint16
		cls   rrlClass
	}{
		{"example.com.", mdns.TypeA, clsPositive},
		{"x1.apps.example.com.", mdns.TypeA, clsWildcard},
		{"deep.sub.example.com.", mdns.TypeA, clsReferral},
		{"ftp.example.com.", mdns.TypeAAAA, clsNodata},
		{"example.org.", mdns.TypeA, clsError},
		{"example.com.", mdns.TypeANY, clsAny},
	} {
		if r := serveFrom(t, h, packed(t, q.name, q.qtype, false), src); r == nil {
			t.Errorf("%s %s: limited by the NXDOMAIN flood", q.name, mdns.TypeToString[q.qtype])
		}
	}
	// Random names under one wildcard or one delegation share its bucket.
	for _, tmpl := range []string{"w%d.apps.example.com.", "h%d.sub.example.com."} {
		n := 0
		for i := range 50 {
			if serveFrom(t, h, packed(t, fmt.Sprintf(tmpl, i), mdns.TypeA, false), src) != nil {
				n++
			}
		}
		if n != 10-1 { // one of the bucket's ten went to the query above
			t.Errorf("%s: %d of 50 random names answered, want 9", tmpl, n)
		}
	}
	if got := h.c[0].limited[clsNXDomain]; got != 90 {
		t.Errorf("limited nxdomain = %d, want 90", got)
	}
}

func TestRRLConfigErrors(t *testing.T) {
	for _, c := range []RRLConfig{
		{Rate: -1, IPv4Prefix: 24, IPv6Prefix: 56, Window: time.Second},
		{Rate: 1, Slip: -1, IPv4Prefix: 24, IPv6Prefix: 56, Window: time.Second},
		{Rate: 1, IPv4Prefix: 24, IPv6Prefix: 56},
		{Rate: 1, IPv4Prefix: 33, IPv6Prefix: 56, Window: time.Second},
		{Rate: 1, IPv4Prefix: 24, IPv6Prefix: 0, Window: time.Second},
	} {
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "--rrl-") {
			t.Errorf("%+v: %v, want an error naming the flag", c, err)
		}
	}
}

// TestRRLPrefixKeys: sources in one prefix share a bucket, the next prefix
// does not, for IPv4 and IPv6.
func TestRRLPrefixKeys(t *testing.T) {
	r := newRRL(RRLConfig{Rate: 1, Window: time.Second, IPv4Prefix: 24, IPv6Prefix: 56})
	var buf [2 + 16 + 255]byte
	name := []byte("\x07example\x03com\x00")
	k := func(a string) uint64 { return r.key(&buf, clsPositive, netip.MustParseAddr(a), name) }
	if k("127.0.0.1") != k("127.0.0.254") || k("127.0.0.1") == k("127.0.1.1") {
		t.Error("IPv4 /24 keys")
	}
	if k("2001:db8:0:ff::1") != k("2001:db8:0:ff:ffff::9") || k("2001:db8::1") == k("2001:db8:0:100::1") {
		t.Error("IPv6 /56 keys")
	}
	if r.key(&buf, clsNodata, netip.MustParseAddr("127.0.0.1"), name) == k("127.0.0.1") {
		t.Error("classes share a key")
	}
}

// TestRRLClockReadPerBatch: a handler reads the limiter's clock (and the
// cookies' by the same batchClock) once per
// batch (Publish ends one) and at least every 64 queries.
func TestRRLClockReadPerBatch(t *testing.T) {
	s, _ := rrlServer(t, RRLConfig{Rate: 1_000_000})
	reads := 0
	s.rrl.now = func() int64 { reads++; return int64(reads) }
	h := s.NewHandler(0)
	raw := packed(t, "example.com.", mdns.TypeA, false)
	p := &packet.Packet{Data: raw, Src: netip.MustParseAddrPort("127.0.0.1:9"), Proto: packet.UDP}
	for range 130 {
		udpQueue.Reset()
		if err := h.ServePacket(udpQueue.Begin(p), p); err != nil {
			t.Fatal(err)
		}
	}
	if reads != 3 {
		t.Errorf("130 queries in one batch read the clock %d times, want 3", reads)
	}
	h.Publish()
	serveFrom(t, h, raw, "127.0.0.1:9")
	if reads != 4 {
		t.Errorf("after Publish the next query read the clock: %d reads, want 4", reads)
	}
}

// TestRRLSharedBucketExactUnderRace: shards counting one bucket at once
// (compare-and-swap, no lock) allow exactly one full bucket at a standstill
// clock, however their updates interleave. (Two shards claiming a new
// bucket's slot at the same instant may both start it full: approximate, as
// in Knot DNS.)
func TestRRLSharedBucketExactUnderRace(t *testing.T) {
	r := newRRL(RRLConfig{Rate: 1000, Window: time.Second, IPv4Prefix: 24, IPv6Prefix: 56})
	var buf [2 + 16 + 255]byte
	key := r.key(&buf, clsPositive, netip.MustParseAddr("127.0.0.1"), []byte{0})
	if !r.allow(key, 1) { // the bucket exists before the race (claiming a slot is approximate)
		t.Fatal("a fresh bucket refused")
	}
	const workers, each = 4, 5000
	allowed := make(chan int, workers)
	for range workers {
		go func() {
			n := 0
			for range each {
				if r.allow(key, 1) {
					n++
				}
			}
			allowed <- n
		}()
	}
	total := 1
	for range workers {
		total += <-allowed
	}
	if total != 1000 {
		t.Errorf("%d allowed of %d at one instant, want the bucket's 1000", total, workers*each)
	}
}
