package dns

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

var testZones = []string{"../../testdata/dns/example.com.zone", "../../testdata/dns/2.0.192.in-addr.arpa.zone"}

func newTestServer(t testing.TB) *Server {
	t.Helper()
	return newServerOf(t, testZones)
}

// newServerOf is a server of the zone files zones.
func newServerOf(t testing.TB, zones []string) *Server {
	t.Helper()
	s, err := NewServer(zones)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// exchange serves one raw query and returns the raw reply (nil: no reply).
func exchange(t testing.TB, h *Handler, raw []byte, proto packet.Proto) []byte {
	t.Helper()
	q := packet.NewReplyQueue(4, 4*65536, 65535)
	if proto == packet.UDP {
		q = packet.NewReplyQueue(4, 4*65536, 65507)
	}
	p := &packet.Packet{Data: raw, Src: netip.MustParseAddrPort("192.0.2.9:5353"), Proto: proto}
	if err := h.ServePacket(q.Begin(p), p); err != nil {
		t.Fatalf("ServePacket: %v", err)
	}
	switch len(q.Replies()) {
	case 0:
		return nil
	case 1:
		return append([]byte(nil), q.Replies()[0].Data...)
	}
	t.Fatalf("%d replies to one query", len(q.Replies()))
	return nil
}

func ask(t testing.TB, h *Handler, q *mdns.Msg, proto packet.Proto) *mdns.Msg {
	t.Helper()
	raw, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	out := exchange(t, h, raw, proto)
	if out == nil {
		t.Fatalf("no reply to %v", q.Question)
	}
	r := new(mdns.Msg)
	if err := r.Unpack(out); err != nil {
		t.Fatalf("reply does not parse: %v\n% x", err, out)
	}
	if r.Id != q.Id || !r.Response {
		t.Fatalf("reply id %d response %v, want id %d and QR", r.Id, r.Response, q.Id)
	}
	return r
}

func newQuery(name string, qtype uint16) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 4242
	return m
}

func rrStrings(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	return out
}

func TestAnswers(t *testing.T) {
	s := newTestServer(t)
	h := s.NewHandler(0)
	type want struct {
		rcode           int
		aa              bool
		answer, ns, ext []string
	}
	soa := "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 2026112501 7200 900 1209600 300"
	cases := []struct {
		name  string
		qtype uint16
		want  want
	}{
		{"example.com.", mdns.TypeSOA, want{0, true, []string{"example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 2026112501 7200 900 1209600 300"}, nil, nil}},
		{"example.com.", mdns.TypeNS, want{0, true, []string{"example.com. 3600 IN NS ns1.example.com.", "example.com. 3600 IN NS ns2.example.com."},
			nil, []string{"ns1.example.com. 3600 IN A 192.0.2.53", "ns1.example.com. 3600 IN AAAA 2001:db8::53", "ns2.example.com. 3600 IN A 192.0.2.54"}}},
		{"example.com.", mdns.TypeA, want{0, true, []string{"example.com. 3600 IN A 192.0.2.1"}, nil, nil}},
		{"example.com.", mdns.TypeAAAA, want{0, true, []string{"example.com. 3600 IN AAAA 2001:db8::1"}, nil, nil}},
		{"example.com.", mdns.TypeMX, want{0, true, []string{"example.com. 3600 IN MX 10 mail.example.com.", "example.com. 3600 IN MX 20 mail2.example.net."},
			nil, []string{"mail.example.com. 3600 IN A 192.0.2.25"}}},
		{"example.com.", mdns.TypeTXT, want{0, true, []string{`example.com. 3600 IN TXT "v=spf1 mx -all"`}, nil, nil}},
		{"example.com.", mdns.TypeCAA, want{0, true, []string{`example.com. 3600 IN CAA 0 issue "letsencrypt.org"`}, nil, nil}},
		{"ftp.example.com.", mdns.TypeA, want{0, true, []string{"ftp.example.com. 600 IN A 192.0.2.21"}, nil, nil}},
		{"_sip._udp.example.com.", mdns.TypeSRV, want{0, true, []string{"_sip._udp.example.com. 3600 IN SRV 10 60 5060 sip.example.com."}, nil, []string{"sip.example.com. 3600 IN A 192.0.2.60"}}},
		{"1.2.0.192.in-addr.arpa.", mdns.TypePTR, want{0, true, []string{"1.2.0.192.in-addr.arpa. 86400 IN PTR example.com."}, nil, nil}},
		{"quoted.example.com.", mdns.TypeTXT, want{0, true, []string{`quoted.example.com. 3600 IN TXT "semicolon; inside" "quote \" inside" "tab\009end"`}, nil, nil}},
		// CNAME chain inside the zone, and the CNAME itself when asked for.
		{"www.example.com.", mdns.TypeA, want{0, true, []string{"www.example.com. 3600 IN CNAME web.example.com.", "web.example.com. 3600 IN CNAME web-1.hosts.example.com.", "web-1.hosts.example.com. 3600 IN A 192.0.2.80"}, nil, nil}},
		{"www.example.com.", mdns.TypeCNAME, want{0, true, []string{"www.example.com. 3600 IN CNAME web.example.com."}, nil, nil}},
		{"www.example.com.", mdns.TypeMX, want{0, true, []string{"www.example.com. 3600 IN CNAME web.example.com.", "web.example.com. 3600 IN CNAME web-1.hosts.example.com."}, []string{soa}, nil}},
		{"outside.example.com.", mdns.TypeA, want{0, true, []string{"outside.example.com. 3600 IN CNAME www.example.org."}, nil, nil}},
		{"loop1.example.com.", mdns.TypeA, want{0, true, []string{"loop1.example.com. 3600 IN CNAME loop2.example.com.", "loop2.example.com. 3600 IN CNAME loop1.example.com."}, nil, nil}},
		// Wildcards (RFC 4592): synthesis, an existing name beats it, NODATA from it.
		{"anything.apps.example.com.", mdns.TypeA, want{0, true, []string{"anything.apps.example.com. 3600 IN A 192.0.2.100"}, nil, nil}},
		{"x.y.apps.example.com.", mdns.TypeTXT, want{0, true, []string{`x.y.apps.example.com. 3600 IN TXT "wildcard"`}, nil, nil}},
		{"host.apps.example.com.", mdns.TypeA, want{0, true, []string{"host.apps.example.com. 3600 IN A 192.0.2.101"}, nil, nil}},
		{"host.apps.example.com.", mdns.TypeTXT, want{0, true, nil, []string{soa}, nil}},
		{"anything.apps.example.com.", mdns.TypeMX, want{0, true, nil, []string{soa}, nil}},
		{"q.alias.example.com.", mdns.TypeA, want{0, true, []string{"q.alias.example.com. 3600 IN CNAME web.example.com.", "web.example.com. 3600 IN CNAME web-1.hosts.example.com.", "web-1.hosts.example.com. 3600 IN A 192.0.2.80"}, nil, nil}},
		// Referrals: NS in authority, glue in additional, no AA; for the cut and below it.
		{"sub.example.com.", mdns.TypeA, want{0, false, nil, []string{"sub.example.com. 3600 IN NS ns.example.net.", "sub.example.com. 3600 IN NS ns1.sub.example.com."}, []string{"ns1.sub.example.com. 3600 IN A 192.0.2.153"}}},
		{"deep.er.sub.example.com.", mdns.TypeMX, want{0, false, nil, []string{"sub.example.com. 3600 IN NS ns.example.net.", "sub.example.com. 3600 IN NS ns1.sub.example.com."}, []string{"ns1.sub.example.com. 3600 IN A 192.0.2.153"}}},
		{"ns1.sub.example.com.", mdns.TypeA, want{0, false, nil, []string{"sub.example.com. 3600 IN NS ns.example.net.", "sub.example.com. 3600 IN NS ns1.sub.example.com."}, []string{"ns1.sub.example.com. 3600 IN A 192.0.2.153"}}},
		{"sub.example.com.", mdns.TypeDS, want{0, true, nil, []string{soa}, nil}},
		// Negative answers with the SOA, TTL = min(SOA TTL, MINIMUM).
		{"nope.example.com.", mdns.TypeA, want{3, true, nil, []string{soa}, nil}},
		{"ftp.example.com.", mdns.TypeAAAA, want{0, true, nil, []string{soa}, nil}},
		{"b.example.com.", mdns.TypeA, want{0, true, nil, []string{soa}, nil}}, // empty non-terminal
		{"x.b.example.com.", mdns.TypeA, want{3, true, nil, []string{soa}, nil}},
		{"3.2.0.192.in-addr.arpa.", mdns.TypePTR, want{3, true, nil, []string{"2.0.192.in-addr.arpa. 600 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 600"}, nil}},
		// Not ours.
		{"example.org.", mdns.TypeA, want{5, false, nil, nil, nil}},
		{"com.", mdns.TypeNS, want{5, false, nil, nil, nil}},
		{".", mdns.TypeNS, want{5, false, nil, nil, nil}},
		// ANY: RFC 8482, one RRset (the lowest type, as Knot DNS); a CNAME unfollowed.
		{"example.com.", mdns.TypeANY, want{0, true, []string{"example.com. 3600 IN A 192.0.2.1"}, nil, nil}},
		{"www.example.com.", mdns.TypeANY, want{0, true, []string{"www.example.com. 3600 IN CNAME web.example.com."}, nil, nil}},
		{"zz.apps.example.com.", mdns.TypeANY, want{0, true, []string{"zz.apps.example.com. 3600 IN A 192.0.2.100"}, nil, nil}},
		{"b.example.com.", mdns.TypeANY, want{0, true, nil, []string{soa}, nil}},
	}
	for _, proto := range []packet.Proto{packet.UDP, packet.TCP} {
		for _, c := range cases {
			r := ask(t, h, newQuery(c.name, c.qtype), proto)
			got := want{r.Rcode, r.Authoritative, rrStrings(r.Answer), rrStrings(r.Ns), rrStrings(r.Extra)}
			if got.rcode != c.want.rcode || got.aa != c.want.aa || strings.Join(got.answer, "\n") != strings.Join(c.want.answer, "\n") ||
				strings.Join(got.ns, "\n") != strings.Join(c.want.ns, "\n") || strings.Join(got.ext, "\n") != strings.Join(c.want.ext, "\n") {
				t.Errorf("%s %s %s:\n got rcode %d aa %v\n  answer %q\n  ns %q\n  extra %q\nwant rcode %d aa %v\n  answer %q\n  ns %q\n  extra %q",
					proto, c.name, mdns.TypeToString[c.qtype], got.rcode, got.aa, got.answer, got.ns, got.ext,
					c.want.rcode, c.want.aa, c.want.answer, c.want.ns, c.want.ext)
			}
			if r.Truncated || r.RecursionAvailable || len(r.Question) != 1 || r.Question[0].Name != c.name {
				t.Errorf("%s %s: TC %v RA %v question %v", proto, c.name, r.Truncated, r.RecursionAvailable, r.Question)
			}
		}
	}
}

// TestAnswerOrderIsStable guards the answer lists above: map iteration at
// load must not reorder an RRset between loads.
func TestAnswerOrderIsStable(t *testing.T) {
	// The file lists ns2 first: the answer comes in canonical order anyway.
	f := filepath.Join(t.TempDir(), "o.zone")
	if err := os.WriteFile(f, []byte("$ORIGIN o.test.\n$TTL 300\n@ SOA ns1 hm 1 2 3 4 5\n@ NS ns2\n@ NS ns1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewServer([]string{f})
	if err != nil {
		t.Fatal(err)
	}
	r := ask(t, s.NewHandler(0), newQuery("o.test.", mdns.TypeNS), packet.UDP)
	if got := rrStrings(r.Answer); len(got) != 2 || !strings.Contains(got[0], "ns1") {
		t.Fatalf("NS order: %q", got)
	}
}

func TestCaseIsPreserved(t *testing.T) {
	h := newTestServer(t).NewHandler(0)
	for _, name := range []string{"WwW.ExAmPlE.CoM.", "AnyThing.APPS.example.COM.", "NOPE.example.com.", "Deep.SUB.example.com."} {
		r := ask(t, h, newQuery(name, mdns.TypeA), packet.UDP)
		if r.Question[0].Name != name {
			t.Errorf("question %q, want %q", r.Question[0].Name, name)
		}
		if r.Rcode == mdns.RcodeRefused {
			t.Errorf("%s: REFUSED; names must match case-insensitively", name)
		}
		if len(r.Answer) > 0 && !strings.EqualFold(r.Answer[0].Header().Name, name) {
			t.Errorf("%s: answer owner %s", name, r.Answer[0].Header().Name)
		}
	}
}

func TestEDNS(t *testing.T) {
	h := newTestServer(t).NewHandler(0)
	// big.example.com TXT is ~640 bytes: over 512, under 1232.
	plain := ask(t, h, newQuery("big.example.com.", mdns.TypeTXT), packet.UDP)
	if !plain.Truncated || len(plain.Answer) != 0 || plain.IsEdns0() != nil {
		t.Fatalf("no EDNS, big answer: TC %v, %d answers, OPT %v; want TC, none, no OPT", plain.Truncated, len(plain.Answer), plain.IsEdns0())
	}
	q := newQuery("big.example.com.", mdns.TypeTXT)
	q.SetEdns0(4096, true)
	r := ask(t, h, q, packet.UDP)
	if r.Truncated || len(r.Answer) != 6 {
		t.Fatalf("EDNS 4096: TC %v, %d answers", r.Truncated, len(r.Answer))
	}
	opt := r.IsEdns0()
	if opt == nil || opt.UDPSize() != MaxUDPSize || opt.Version() != 0 || !opt.Do() {
		t.Fatalf("OPT %v: want size %d, version 0, DO copied (RFC 3225)", opt, MaxUDPSize)
	}
	// huge.example.com is ~1600 bytes: over 1232 whatever the client says.
	q = newQuery("huge.example.com.", mdns.TypeTXT)
	q.SetEdns0(65000, false)
	if r := ask(t, h, q, packet.UDP); !r.Truncated || len(r.Answer) != 0 || r.IsEdns0() == nil {
		t.Fatalf("huge over UDP: TC %v answers %d", r.Truncated, len(r.Answer))
	}
	if r := ask(t, h, q, packet.TCP); r.Truncated || len(r.Answer) != 6 {
		t.Fatalf("huge over TCP: TC %v answers %d", r.Truncated, len(r.Answer))
	}
	// A payload size under 512 counts as 512 (RFC 6891 6.2.5).
	q = newQuery("example.com.", mdns.TypeA)
	q.SetEdns0(100, false)
	if r := ask(t, h, q, packet.UDP); r.Truncated || len(r.Answer) != 1 {
		t.Fatalf("size 100: TC %v answers %d", r.Truncated, len(r.Answer))
	}
	// Outside every zone: REFUSED with Extended DNS Error 20 (RFC 8914).
	q = newQuery("example.org.", mdns.TypeA)
	q.SetEdns0(1232, false)
	r = ask(t, h, q, packet.UDP)
	if opt := r.IsEdns0(); r.Rcode != mdns.RcodeRefused || opt == nil || len(opt.Option) != 1 || opt.Option[0].(*mdns.EDNS0_EDE).InfoCode != mdns.ExtendedErrorCodeNotAuthoritative {
		t.Fatalf("REFUSED: rcode %s OPT %v; want EDE 20", mdns.RcodeToString[r.Rcode], opt)
	}
	// Unknown version: BADVERS with our OPT at version 0.
	q = newQuery("example.com.", mdns.TypeA)
	q.SetEdns0(1232, false)
	q.IsEdns0().SetVersion(1)
	r = ask(t, h, q, packet.UDP)
	if r.Rcode != mdns.RcodeBadVers || r.IsEdns0() == nil || r.IsEdns0().Version() != 0 || len(r.Answer) != 0 {
		t.Fatalf("version 1: rcode %s OPT %v answers %d", mdns.RcodeToString[r.Rcode], r.IsEdns0(), len(r.Answer))
	}
}

// TestTruncationDropsAdditionalFirst: when helpful additional records do not
// fit, they go and the answer stays (no TC): RFC 2181 9.
func TestTruncationDropsAdditionalFirst(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("$ORIGIN t.test.\n$TTL 300\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n")
	for i := range 20 {
		b.WriteString("@ MX 10 mx" + string(rune('a'+i)) + "\n")
		b.WriteString("mx" + string(rune('a'+i)) + " AAAA 2001:db8::1\n")
	}
	f := filepath.Join(dir, "t.zone")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewServer([]string{f})
	if err != nil {
		t.Fatal(err)
	}
	h := s.NewHandler(0)
	r := ask(t, h, newQuery("t.test.", mdns.TypeMX), packet.UDP)
	qb, _ := newQuery("t.test.", mdns.TypeMX).Pack()
	raw := exchange(t, h, qb, packet.UDP)
	if r.Truncated || len(r.Answer) != 20 || len(r.Extra) == 0 || len(r.Extra) == 20 || len(raw) > 512 || len(raw)+40 <= 512 {
		t.Fatalf("512 bytes: TC %v answers %d extra %d in %d bytes; want the 20 MX and as many AAAA as fit, no TC", r.Truncated, len(r.Answer), len(r.Extra), len(raw))
	}
	q := newQuery("t.test.", mdns.TypeMX)
	q.SetEdns0(1232, false)
	if r := ask(t, h, q, packet.UDP); r.Truncated || len(r.Answer) != 20 || len(r.Extra) != 21 {
		t.Fatalf("1232 bytes: TC %v answers %d extra %d; want 20 MX, 20 AAAA + OPT", r.Truncated, len(r.Answer), len(r.Extra))
	}
}

func TestErrors(t *testing.T) {
	h := newTestServer(t).NewHandler(0)
	base, _ := newQuery("example.com.", mdns.TypeA).Pack()
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), base...)) }
	cases := []struct {
		name  string
		raw   []byte
		rcode int // -1: no reply
		qd    int
	}{
		{"qdcount 0", mod(func(b []byte) []byte { b[5] = 0; return b[:12] }), mdns.RcodeFormatError, 0},
		{"qdcount 2", mod(func(b []byte) []byte { b[5] = 2; return append(b, b[12:]...) }), mdns.RcodeFormatError, 0},
		{"truncated question", mod(func(b []byte) []byte { return b[:len(b)-3] }), mdns.RcodeFormatError, 0},
		{"label too long", mod(func(b []byte) []byte { b[12] = 64; return b }), mdns.RcodeFormatError, 0},
		{"pointer in question", mod(func(b []byte) []byte { return append(b[:12], 0xC0, 12, 0, 1, 0, 1) }), mdns.RcodeFormatError, 0},
		{"opcode NOTIFY", mod(func(b []byte) []byte { b[2] |= 4 << 3; return b }), mdns.RcodeNotImplemented, 1},
		{"opcode 15", mod(func(b []byte) []byte { b[2] |= 15 << 3; return b }), mdns.RcodeNotImplemented, 1},
		{"class CH", mod(func(b []byte) []byte { b[len(b)-1] = 3; return b }), mdns.RcodeRefused, 1},
		{"AXFR", mod(func(b []byte) []byte { b[len(b)-3] = 252; return b }), mdns.RcodeRefused, 1},
		{"QR set", mod(func(b []byte) []byte { b[2] |= 0x80; return b }), -1, 0},
		{"short", base[:11], -1, 0},
		{"empty", nil, -1, 0},
		{"two OPT", func() []byte {
			q := newQuery("example.com.", mdns.TypeA)
			q.SetEdns0(1232, false)
			q.Extra = append(q.Extra, q.Extra[0])
			b, _ := q.Pack()
			return b
		}(), mdns.RcodeFormatError, 1},
		{"OPT rdlen past end", func() []byte {
			q := newQuery("example.com.", mdns.TypeA)
			q.SetEdns0(1232, false)
			b, _ := q.Pack()
			b[len(b)-1] = 9
			return b
		}(), mdns.RcodeFormatError, 1},
	}
	for _, c := range cases {
		out := exchange(t, h, c.raw, packet.UDP)
		if c.rcode < 0 {
			if out != nil {
				t.Errorf("%s: got a reply, want none", c.name)
			}
			continue
		}
		r := new(mdns.Msg)
		if err := r.Unpack(out); err != nil {
			t.Fatalf("%s: reply does not parse: %v", c.name, err)
		}
		if r.Rcode != c.rcode || len(r.Question) != c.qd || r.Id != 4242 || !r.Response || len(r.Answer) != 0 || r.Authoritative {
			t.Errorf("%s: rcode %s question %d id %d; want %s, %d", c.name, mdns.RcodeToString[r.Rcode], len(r.Question), r.Id, mdns.RcodeToString[c.rcode], c.qd)
		}
	}
	c := &h.c[0]
	if c.dropped[dropResponse] != 1 || c.dropped[dropShort] != 2 || c.malformed != 9 {
		t.Errorf("dropped response %d short %d malformed %d; want 1, 2, 9",
			c.dropped[dropResponse], c.dropped[dropShort], c.malformed)
	}
}

func TestZoneErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, zone, want string }{
		{"syntax", "$ORIGIN x.test.\n$TTL 300\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nbad A 300.1.1.1\n", "line: 5"},
		{"no SOA", "$ORIGIN x.test.\n$TTL 300\n@ NS ns\n", "no SOA"},
		{"no NS", "$ORIGIN x.test.\n$TTL 300\n@ SOA ns hm 1 2 3 4 5\n", "no NS"},
		{"out of zone", "$ORIGIN x.test.\n$TTL 300\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nwww.y.test. A 192.0.2.1\n", "outside the zone"},
		{"CNAME and data", "$ORIGIN x.test.\n$TTL 300\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nw CNAME x\nw A 192.0.2.1\n", "CNAME and other data"},
		{"two SOA", "$ORIGIN x.test.\n$TTL 300\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nw SOA ns hm 1 2 3 4 5\n", "two SOA"},
		{"DNAME", "$ORIGIN x.test.\n$TTL 300\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nd DNAME y.test.\n", "DNAME is not supported"},
		{"unbalanced paren", "$ORIGIN x.test.\n$TTL 300\n@ SOA ns hm ( 1 2 3 4 5\n@ NS ns\n", "x.zone"},
	}
	for _, c := range cases {
		f := filepath.Join(dir, "x.zone")
		if err := os.WriteFile(f, []byte(c.zone), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadZone(f)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), f) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v; want one line naming %s and %q", c.name, err, f, c.want)
		}
	}
	if _, err := LoadZone(filepath.Join(dir, "missing.zone")); err == nil || !strings.Contains(err.Error(), "missing.zone") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := LoadZones([]string{testZones[0], testZones[0]}); err == nil || !strings.Contains(err.Error(), "already served") {
		t.Errorf("same zone twice: %v", err)
	}
}

func TestReloadKeepsOldZonesOnError(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "r.zone")
	write := func(s string) {
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("$ORIGIN r.test.\n$TTL 300\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nw A 192.0.2.1\n")
	s, err := NewServer([]string{f})
	if err != nil {
		t.Fatal(err)
	}
	h := s.NewHandler(0)
	a := func() string {
		r := ask(t, h, newQuery("w.r.test.", mdns.TypeA), packet.UDP)
		return strings.Join(rrStrings(r.Answer), ",")
	}
	write("$ORIGIN r.test.\n$TTL 300\n@ SOA ns hm 2 2 3 4 5\n@ NS ns\nw A 192.0.2.2\n")
	if _, err := s.Reload(); err != nil || !strings.Contains(a(), "192.0.2.2") {
		t.Fatalf("reload: %v, answer %s", err, a())
	}
	write("$ORIGIN r.test.\n$TTL 300\n@ SOA ns hm 3 2 3 4 5\n@ NS ns\nw A 192.0.2.999\n")
	if _, err := s.Reload(); err == nil || !strings.Contains(err.Error(), "line: 5") {
		t.Fatalf("bad reload: %v", err)
	}
	if !strings.Contains(a(), "192.0.2.2") || s.reloadErrors.Load() != 1 || s.reloads.Load() != 1 {
		t.Fatalf("after a bad reload: answer %s, errors %d, reloads %d", a(), s.reloadErrors.Load(), s.reloads.Load())
	}
}
