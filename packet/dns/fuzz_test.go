package dns

import (
	"net/netip"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

// FuzzServePacket: arbitrary bytes never panic; each message either gets
// one reply that parses, with the query's ID and QR set, or none and is
// counted as dropped.
func FuzzServePacket(f *testing.F) {
	for _, q := range []*mdns.Msg{
		newQuery("www.example.com.", mdns.TypeA),
		newQuery("x.apps.example.com.", mdns.TypeTXT),
		newQuery("deep.sub.example.com.", mdns.TypeA),
		newQuery("nope.example.com.", mdns.TypeAAAA),
		newQuery("huge.example.com.", mdns.TypeTXT),
	} {
		b, _ := q.Pack()
		f.Add(b, false)
		q.SetEdns0(1232, true)
		b, _ = q.Pack()
		f.Add(b, true)
	}
	f.Add([]byte{}, false)
	f.Add([]byte{0, 1, 0x80, 0, 0, 1}, false)
	fuzzServe(f, newTestServer(f))
}

// fuzzServe runs the checks of FuzzServePacket on s's handler: a reply that
// parses, with the query's ID and QR set, or none and counted as dropped
// (or rate-limited).
func fuzzServe(f *testing.F, s *Server) {
	h := s.NewHandler(0)
	q := packet.NewReplyQueue(4, 4*65536, 65535)
	f.Fuzz(func(t *testing.T, raw []byte, tcp bool) {
		proto := packet.UDP
		if tcp {
			proto = packet.TCP
		}
		q.Reset()
		p := &packet.Packet{Data: raw, Src: netip.MustParseAddrPort("192.0.2.1:53"), Proto: proto}
		w := q.Begin(p)
		dropped := func() uint64 {
			c := &h.c[proto-1]
			n := c.dropped[dropResponse] + c.dropped[dropShort] - c.slipped
			for _, l := range c.limited {
				n += l
			}
			return n
		}
		before := dropped()
		if err := h.ServePacket(w, p); err != nil {
			t.Fatalf("ServePacket: %v", err)
		}
		h.Publish()
		switch len(q.Replies()) {
		case 0:
			if dropped() != before+1 {
				t.Fatalf("no reply and not counted as dropped: % x", raw)
			}
		case 1:
			out := q.Replies()[0].Data
			r := new(mdns.Msg)
			if err := r.Unpack(out); err != nil {
				t.Fatalf("reply does not parse: %v\nquery % x\nreply % x", err, raw, out)
			}
			if out[0] != raw[0] || out[1] != raw[1] || !r.Response {
				t.Fatalf("reply id/QR wrong: query % x reply % x", raw[:4], out[:4])
			}
			if proto == packet.UDP && len(out) > MaxUDPSize {
				t.Fatalf("UDP reply of %d bytes", len(out))
			}
		default:
			t.Fatalf("%d replies", len(q.Replies()))
		}
	})
}

// FuzzParseZone: any zone text either fails with a one-line error naming
// the file, or loads into a zone whose every answer was packed.
func FuzzParseZone(f *testing.F) {
	f.Add("$ORIGIN f.test.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n*.w CNAME ns\nsub NS ns.sub\nns.sub A 192.0.2.2\n")
	f.Add("$TTL 60\nf.test. SOA ns.f.test. hm.f.test. ( 1 2\n 3 4 5 )\nf.test. NS a.b.\nx.f.test. MX 10 x.f.test.\nx.f.test. A 192.0.2.3\n")
	f.Add("$ORIGIN f.test.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\na CNAME b\nb CNAME a\n*.c TXT \"x\\\"y\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 2048 {
			return // long tokens only slow the lexer's instrumented build; they find nothing new
		}
		z, err := parseZone(strings.NewReader(text), "fuzz.zone", false)
		if err != nil {
			if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "zone fuzz.zone: ") {
				t.Fatalf("error %q: want one line starting with the file", err)
			}
			return
		}
		for _, n := range z.nodes {
			if n.exactDefault == nil {
				t.Fatalf("%s: no default answer", n.name)
			}
			// Every packed answer parses after its question.
			wq, err := wireName(n.name)
			if err != nil {
				t.Fatal(err)
			}
			for qt, tp := range n.exact {
				c := tp.counts
				msg := []byte{0, 0, 0x84, 0, 0, 1, byte(c[0] >> 8), byte(c[0]), byte(c[1] >> 8), byte(c[1]), byte(c[2] >> 8), byte(c[2])}
				msg = append(append(msg, wq...), byte(qt>>8), byte(qt), 0, 1)
				msg = tp.appendBody(msg, tp.whole(), len(wq), proof{})
				if err := new(mdns.Msg).Unpack(msg); err != nil {
					t.Fatalf("%s/%d: packed answer does not parse: %v", n.name, qt, err)
				}
			}
		}
	})
}
