package dns

import (
	"net/netip"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

// signedZones are the example zones signed (testdata/dns/signed/gen.sh):
// example.com with NSEC, edge.test with NSEC3 and opt-out.
var signedZones = []string{"../../testdata/dns/signed/example.com.zone", "../../testdata/dns/signed/edge.test.zone"}

func newSignedServer(t testing.TB) *Server {
	t.Helper()
	return newServerOf(t, signedZones)
}

// doQueries are DO queries over each DNSSEC path: signed positive answers,
// NODATA, NXDOMAIN with a query-time NSEC and NSEC3 proof, wildcard
// answers and wildcard NODATA (query-time proofs), referrals, and two
// replies truncated to the client's size amid those proofs.
func doQueries(t testing.TB) [][]byte {
	var out [][]byte
	for _, q := range []*mdns.Msg{
		newQuery("example.com.", mdns.TypeA),
		newQuery("www.example.com.", mdns.TypeA),
		newQuery("ftp.example.com.", mdns.TypeAAAA),
		newQuery("nope.example.com.", mdns.TypeA),
		newQuery("x.y.nope.example.com.", mdns.TypeA),
		newQuery("a1b2.apps.example.com.", mdns.TypeA),
		newQuery("a1b2.apps.example.com.", mdns.TypeMX),
		newQuery("deep.sub.example.com.", mdns.TypeA),
		newQuery("nx.edge.test.", mdns.TypeA),
		newQuery("x.y.apps.edge.test.", mdns.TypeTXT),
		newQuery("q.apps.edge.test.", mdns.TypeMX),
		newQuery("www.child.edge.test.", mdns.TypeA),
		newQuery("nx.edge.test.", mdns.TypeNS),          // truncated (648) in the query-time proof
		newQuery("q.alias.example.com.", mdns.TypeAAAA), // and (512) in a wildcard proof
	} {
		size := uint16(1232)
		switch q.Question[0].Name {
		case "nx.edge.test.":
			if q.Question[0].Qtype == mdns.TypeNS {
				size = 648
			}
		case "q.alias.example.com.":
			size = 512
		}
		q.SetEdns0(size, true)
		b, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestServePacketDNSSECAllocatesNothing(t *testing.T) {
	h := newSignedServer(t).NewHandler(0)
	qs := doQueries(t)
	rq := assertNoAllocs(t, h, qs, "192.0.2.1:53")
	if len(rq.Replies()) != len(qs) {
		t.Fatalf("%d replies to %d queries", len(rq.Replies()), len(qs))
	}
}

// askDO asks h name/qtype over UDP with the DO bit and the payload size
// size, and returns the parsed reply, the reply and the query.
func askDO(t *testing.T, h *Handler, name string, qtype uint16, size uint16) (*mdns.Msg, []byte, []byte) {
	t.Helper()
	q := newQuery(name, qtype)
	q.SetEdns0(size, true)
	raw, _ := q.Pack()
	out := exchange(t, h, raw, packet.UDP)
	m := new(mdns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m, out, raw
}

// TestDNSSECProofs checks the query-time proofs: the NSEC covering the
// name (example.com) and the NSEC3 covering the hash of the next closer
// name (edge.test) are the records the chain really has for those names,
// with their RRSIGs, and the reply parses.
func TestDNSSECProofs(t *testing.T) {
	h := newSignedServer(t).NewHandler(0)
	for _, c := range []struct {
		name  string
		qtype uint16
		rcode int
		want  []string // owner and type of the authority records
	}{
		{"nope.example.com.", mdns.TypeA, mdns.RcodeNameError, []string{"example.com. SOA", "mail.example.com. NSEC", "example.com. NSEC", "example.com. RRSIG", "mail.example.com. RRSIG", "example.com. RRSIG"}},
		{"zzz.example.com.", mdns.TypeA, mdns.RcodeNameError, []string{"example.com. SOA", "www.example.com. NSEC", "example.com. NSEC", "example.com. RRSIG", "www.example.com. RRSIG", "example.com. RRSIG"}},
		{"a1.apps.example.com.", mdns.TypeA, mdns.RcodeSuccess, []string{"*.apps.example.com. NSEC", "*.apps.example.com. RRSIG"}},
		{"zz.apps.example.com.", mdns.TypeA, mdns.RcodeSuccess, []string{"host.apps.example.com. NSEC", "host.apps.example.com. RRSIG"}},
		{"nx.edge.test.", mdns.TypeA, mdns.RcodeNameError, []string{"edge.test. SOA", "odmb38fpgkvhmb42d3vkhat85k49jaaa.edge.test. NSEC3", "3rfss55j359163jegubdb2t1nt7vf3in.edge.test. NSEC3", "r8pqms89q7f3lp5pd66dfe3g8kua2j6h.edge.test. NSEC3",
			"edge.test. RRSIG", "odmb38fpgkvhmb42d3vkhat85k49jaaa.edge.test. RRSIG", "3rfss55j359163jegubdb2t1nt7vf3in.edge.test. RRSIG", "r8pqms89q7f3lp5pd66dfe3g8kua2j6h.edge.test. RRSIG"}},
	} {
		m, _, _ := askDO(t, h, c.name, c.qtype, 1232)
		var got []string
		for _, rr := range m.Ns {
			got = append(got, rr.Header().Name+" "+mdns.TypeToString[rr.Header().Rrtype])
		}
		if m.Rcode != c.rcode || strings.Join(got, "\n") != strings.Join(c.want, "\n") || m.AuthenticatedData {
			t.Errorf("%s: rcode %d AD %v, authority\n%s\nwant rcode %d\n%s", c.name, m.Rcode, m.AuthenticatedData, strings.Join(got, "\n"), c.rcode, strings.Join(c.want, "\n"))
		}
	}
}

// BenchmarkServePacketDNSSEC is the cost per DO query of a signed answer,
// and of NXDOMAIN and wildcard answers whose proof is found at query time
// (NSEC: a binary search by canonical order; NSEC3: a SHA-1 hash and a
// binary search).
func BenchmarkServePacketDNSSEC(b *testing.B) {
	benchQueries(b, newSignedServer(b), true, []benchQuery{
		{"A", newQuery("example.com.", mdns.TypeA)},
		{"nxdomain-nsec", newQuery("nope.example.com.", mdns.TypeA)},
		{"wildcard-nsec", newQuery("a1b2.apps.example.com.", mdns.TypeA)},
		{"nxdomain-nsec3", newQuery("nx.edge.test.", mdns.TypeA)},
		{"wildcard-nsec3", newQuery("x.apps.edge.test.", mdns.TypeA)},
	})
}

// FuzzServePacketDNSSEC: FuzzServePacket's checks on the signed zones with
// DO queries, whose names reach the query-time proofs (canonical order
// keys, NSEC3 hashes of any name).
func FuzzServePacketDNSSEC(f *testing.F) {
	for _, b := range doQueries(f) {
		f.Add(b, false)
		f.Add(b, true)
	}
	fuzzServe(f, newSignedServer(f))
}

// TestDNSSECTruncation: a signed answer that does not fit the client's
// size gets, as Knot DNS sends it, the RRsets that fit, whole and in
// order, up to the first that does not (RRSIGs a set per covered type,
// after their section's RRsets; the query-time proof's record and RRSIGs
// among them), with TC set; the client retries over TCP, where it fits
// whole. One that fits with its query-time proof is sent whole without
// TC, the proof's owner names compressed as Knot compresses them (the
// same reply fits 512 bytes there). The figures are Knot DNS 3.2's for the
// same files (TestSignedSameAnswersAsKnot compares them whole).
func TestDNSSECTruncation(t *testing.T) {
	h := newSignedServer(t).NewHandler(0)
	nx := []string{"edge.test. SOA", "odmb38fpgkvhmb42d3vkhat85k49jaaa.edge.test. NSEC3", "3rfss55j359163jegubdb2t1nt7vf3in.edge.test. NSEC3",
		"r8pqms89q7f3lp5pd66dfe3g8kua2j6h.edge.test. NSEC3", "edge.test. RRSIG", "odmb38fpgkvhmb42d3vkhat85k49jaaa.edge.test. RRSIG",
		"3rfss55j359163jegubdb2t1nt7vf3in.edge.test. RRSIG", "r8pqms89q7f3lp5pd66dfe3g8kua2j6h.edge.test. RRSIG"}
	for _, c := range []struct {
		name   string
		qtype  uint16
		size   uint16
		tc     bool
		counts [3]int   // answer, authority, additional (without OPT)
		ns     []string // the authority records' owners and types, if given
	}{
		{"nx.edge.test.", mdns.TypeA, 512, true, [3]int{0, 5, 0}, nx[:5]},                                          // the NSEC3s' RRSIGs do not fit
		{"nx.edge.test.", mdns.TypeA, 544, true, [3]int{0, 6, 0}, nx[:6]},                                          // one does
		{"nx.edge.test.", mdns.TypeA, 648, true, [3]int{0, 7, 0}, nx[:7]},                                          // and the query-time proof's
		{"nx.edge.test.", mdns.TypeA, 752, false, [3]int{0, 8, 0}, nx},                                             // all
		{"x.y.apps.edge.test.", mdns.TypeMX, 512, true, [3]int{0, 5, 0}, nil},                                      // wildcard NODATA, NSEC3
		{"nope.example.com.", mdns.TypeA, 512, false, [3]int{0, 6, 0}, nil},                                        // SOA, 2 NSEC, 3 RRSIGs
		{"zz.apps.example.com.", mdns.TypeTXT, 512, false, [3]int{2, 2, 0}, nil},                                   // a wildcard answer and its NSEC
		{"big.example.com.", mdns.TypeTXT, 512, true, [3]int{0, 0, 0}, nil},                                        // the answer RRset itself does not fit
		{"big.example.com.", mdns.TypeTXT, 768, true, [3]int{6, 0, 0}, nil},                                        // its RRSIG does not
		{"q.alias.example.com.", mdns.TypeAAAA, 512, true, [3]int{6, 1, 0}, []string{"*.alias.example.com. NSEC"}}, // CNAMEs to a wildcard
		{"x.big.edge.test.", mdns.TypeA, 512, true, [3]int{0, 11, 0}, nil},                                         // referral: 8 NS, 2 NSEC3, an RRSIG
		{"x.big.edge.test.", mdns.TypeA, 640, true, [3]int{0, 12, 3}, nil},                                         // and part of the glue
		{"x.big.edge.test.", mdns.TypeA, 1224, false, [3]int{0, 12, 24}, nil},                                      // all of it
	} {
		m, out, raw := askDO(t, h, c.name, c.qtype, c.size)
		got := [3]int{len(m.Answer), len(m.Ns), len(m.Extra) - 1}
		if m.Truncated != c.tc || got != c.counts || len(out) > int(c.size) {
			t.Errorf("%s/%d: TC %v, %v records, %d bytes; want TC %v, %v records, at most %d bytes", c.name, c.size, m.Truncated, got, len(out), c.tc, c.counts, c.size)
		}
		if m.Rcode == mdns.RcodeNameError && len(m.Ns) == 0 {
			t.Errorf("%s/%d: NXDOMAIN with no SOA", c.name, c.size)
		}
		var ns []string
		for _, rr := range m.Ns {
			ns = append(ns, rr.Header().Name+" "+mdns.TypeToString[rr.Header().Rrtype])
		}
		if c.ns != nil && strings.Join(ns, "\n") != strings.Join(c.ns, "\n") {
			t.Errorf("%s/%d: authority\n%s\nwant\n%s", c.name, c.size, strings.Join(ns, "\n"), strings.Join(c.ns, "\n"))
		}
		if !c.tc {
			continue
		}
		p := &packet.Packet{Src: netip.MustParseAddrPort("192.0.2.1:53"), Proto: packet.TCP, Data: raw}
		q2 := packet.NewReplyQueue(4, 4*65536, 65535)
		if err := h.ServePacket(q2.Begin(p), p); err != nil || len(q2.Replies()) != 1 {
			t.Fatalf("%s over TCP: %v", c.name, err)
		}
		full := new(mdns.Msg)
		if err := full.Unpack(q2.Replies()[0].Data); err != nil || full.Truncated || len(full.Answer)+len(full.Ns)+len(full.Extra) <= len(m.Answer)+len(m.Ns)+len(m.Extra) {
			t.Errorf("%s over TCP: %v, TC %v, %d records, over UDP %d", c.name, err, full.Truncated, len(full.Answer)+len(full.Ns)+len(full.Extra), len(m.Answer)+len(m.Ns)+len(m.Extra))
		}
	}
}
