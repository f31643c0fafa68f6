package dns

import (
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

// TestServePacketAllocatesNothingWithRRLAndCookies: the limiter and cookies
// add no allocation, whether a query is passed, slipped, dropped or carries
// a cookie.
func TestServePacketAllocatesNothingWithRRLAndCookies(t *testing.T) {
	s, _ := cookieServer(t, RRLConfig{Rate: 3, Slip: 2})
	h := s.NewHandler(0)
	qs := append(hotQueries(t), cookieQuery(t, "0102030405060708"))
	r := serveFrom(t, h, qs[len(qs)-1], "127.0.0.1:53")
	qs = append(qs, cookieQuery(t, replyCookie(r)))
	assertNoAllocs(t, h, qs, "127.0.0.1:53")
	if h.c[0].slipped == 0 || h.c[0].limited[clsPositive] == 0 {
		t.Fatal("the run limited nothing: it did not test the limited path")
	}
}

// BenchmarkServePacketRRL is the cost of RRL on the query path: each case
// without RRL, then with RRL at a rate no benign client reaches (every
// query is counted in its bucket and passes), then with RRL and a valid
// server cookie (checked, so the bucket is skipped), interleaved.
// go test -run '^$' -bench ServePacketRRL -benchmem -count 5 ./packet/dns/
func BenchmarkServePacketRRL(b *testing.B) {
	off := newTestServer(b)
	on := newTestServer(b)
	if err := on.EnableRRL(RRLConfig{Rate: 1_000_000, Slip: 2, Window: time.Second, IPv4Prefix: 24, IPv6Prefix: 56}); err != nil {
		b.Fatal(err)
	}
	if err := on.EnableCookies(); err != nil {
		b.Fatal(err)
	}
	src := netip.MustParseAddrPort("192.0.2.1:53")
	for _, c := range []struct {
		name string
		q    *mdns.Msg
	}{
		{"A", newQuery("example.com.", mdns.TypeA)},
		{"wildcard", newQuery("a1b2.apps.example.com.", mdns.TypeA)},
		{"nxdomain", newQuery("nope.example.com.", mdns.TypeA)},
	} {
		c.q.SetEdns0(1232, false)
		raw, _ := c.q.Pack()
		cookie := cookieQuery(b, "0102030405060708")
		r := serveFrom(b, on.NewHandler(0), cookie, src.String())
		cookie = cookieQuery(b, replyCookie(r))
		for _, m := range []struct {
			mode string
			s    *Server
			raw  []byte
		}{{"off", off, raw}, {"rrl", on, raw}, {"rrl+cookie", on, cookie}} {
			if m.mode == "rrl+cookie" && c.name != "A" {
				continue // the cookie query asks example.com A
			}
			h := m.s.NewHandler(0)
			rq := packet.NewReplyQueue(64, 64*65536, 65507)
			p := &packet.Packet{Src: src, Proto: packet.UDP, Data: m.raw}
			b.Run(c.name+"/"+m.mode, func(b *testing.B) { benchServe(b, h, rq, p) })
		}
	}
}
