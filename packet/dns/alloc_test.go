package dns

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

// hotQueries covers each path of the query code: exact answers, a CNAME
// chain, wildcard synthesis, a referral below a cut, NXDOMAIN, NODATA,
// REFUSED, truncation and EDNS.
func hotQueries(t testing.TB) [][]byte {
	var out [][]byte
	for i, q := range []*dns.Msg{
		newQuery("example.com.", dns.TypeA),
		newQuery("WWW.example.com.", dns.TypeA),
		newQuery("a1b2.apps.example.com.", dns.TypeA),
		newQuery("deep.sub.example.com.", dns.TypeA),
		newQuery("nope.example.com.", dns.TypeA),
		newQuery("ftp.example.com.", dns.TypeAAAA),
		newQuery("example.org.", dns.TypeA),
		newQuery("big.example.com.", dns.TypeTXT),
		newQuery("example.com.", dns.TypeMX),
	} {
		if i%2 == 0 {
			q.SetEdns0(1232, false)
		}
		b, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestServePacketAllocatesNothing(t *testing.T) {
	h := newTestServer(t).NewHandler(0)
	w := packet.NewReplyWriter(64, 64*65536, 65507)
	qs := hotQueries(t)
	p := &packet.Packet{Src: netip.MustParseAddrPort("192.0.2.1:53"), Proto: packet.UDP}
	allocs := testing.AllocsPerRun(200, func() {
		w.Reset()
		for _, q := range qs {
			p.Data = q
			w.Begin(p)
			if err := h.ServePacket(w, p); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per %d queries, want 0", allocs, len(qs))
	}
	if len(w.Replies()) != len(qs) {
		t.Fatalf("%d replies to %d queries", len(w.Replies()), len(qs))
	}
}

// BenchmarkServePacket is the handler's cost per query (make bench-go).
func BenchmarkServePacket(b *testing.B) {
	h := newTestServer(b).NewHandler(0)
	w := packet.NewReplyWriter(64, 64*65536, 65507)
	p := &packet.Packet{Src: netip.MustParseAddrPort("192.0.2.1:53"), Proto: packet.UDP}
	for _, c := range []struct {
		name string
		q    *dns.Msg
	}{
		{"A", newQuery("example.com.", dns.TypeA)},
		{"cname-chain", newQuery("www.example.com.", dns.TypeA)},
		{"wildcard", newQuery("a1b2.apps.example.com.", dns.TypeA)},
		{"nxdomain", newQuery("nope.example.com.", dns.TypeA)},
		{"referral", newQuery("deep.sub.example.com.", dns.TypeA)},
	} {
		c.q.SetEdns0(1232, false)
		raw, _ := c.q.Pack()
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			p.Data = raw
			for i := 0; i < b.N; i++ {
				if w.Len() == 64 {
					w.Reset()
				}
				w.Begin(p)
				if err := h.ServePacket(w, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
