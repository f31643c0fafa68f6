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
// size gets TC and no records (the client retries over TCP, where it fits
// whole); one that fits with its query-time proof is sent whole without
// TC, the proof's owner names compressed (as Knot DNS sends it: the same
// reply fits 512 bytes there).
func TestDNSSECTruncation(t *testing.T) {
	h := newSignedServer(t).NewHandler(0)
	for _, c := range []struct {
		name    string
		qtype   uint16
		tc      bool
		records int // authority
	}{
		{"nx.edge.test.", mdns.TypeA, true, 0},           // SOA, 3 NSEC3, 4 RRSIGs: about 900 bytes
		{"x.y.apps.edge.test.", mdns.TypeMX, true, 0},    // wildcard NODATA, NSEC3
		{"nope.example.com.", mdns.TypeA, false, 6},      // SOA, 2 NSEC, 3 RRSIGs
		{"zz.apps.example.com.", mdns.TypeTXT, false, 2}, // a wildcard answer and its NSEC
	} {
		m, out, raw := askDO(t, h, c.name, c.qtype, 512)
		if m.Truncated != c.tc || len(m.Ns) != c.records || len(out) > 512 {
			t.Errorf("%s: TC %v, %d authority records, %d bytes; want TC %v, %d records, at most 512 bytes", c.name, m.Truncated, len(m.Ns), len(out), c.tc, c.records)
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
		if err := full.Unpack(q2.Replies()[0].Data); err != nil || full.Truncated || len(full.Ns) == 0 {
			t.Errorf("%s over TCP: %v, TC %v, %d authority records", c.name, err, full.Truncated, len(full.Ns))
		}
	}
}
