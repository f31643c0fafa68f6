package dns

import (
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
// answers and wildcard NODATA (query-time proofs), referrals.
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
	} {
		q.SetEdns0(1232, true)
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
		q := newQuery(c.name, c.qtype)
		q.SetEdns0(1232, true)
		raw, _ := q.Pack()
		m := new(mdns.Msg)
		if err := m.Unpack(exchange(t, h, raw, packet.UDP)); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
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
