package dns

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"
)

// TestServerCookieRFC9018Vectors checks the server cookie hash against the
// examples of RFC 9018 appendix A (also Knot DNS's tests/libknot/test_cookies.c).
func TestServerCookieRFC9018Vectors(t *testing.T) {
	for _, v := range []struct{ secret, client, ip, cookie string }{
		{"e5e973e5a6b2a43f48e7dc849e37bfcf", "2464c4abcf10c957", "198.51.100.100", "010000005cf79f111f8130c3eee29480"},
		{"e5e973e5a6b2a43f48e7dc849e37bfcf", "2464c4abcf10c957", "198.51.100.100", "010000005cf7a871d4a564a1442aca77"},
		{"e5e973e5a6b2a43f48e7dc849e37bfcf", "fc93fc62807ddb86", "203.0.113.203", "01abcdef5cf78f71a314227b6679ebf5"},
		{"dd3bdf9344b678b185a6f5cb60fca715", "22681ab97d52c298", "2001:db8:220:1:59de:d0f4:8769:82b8", "010000005cf7c57926556bd0934c72f8"},
		{"445536bcd2513298075a5d379663c962", "22681ab97d52c298", "2001:db8:220:1:59de:d0f4:8769:82b8", "010000005cf7c609a6bb79d16625507a"},
	} {
		k, _ := hex.DecodeString(v.secret)
		cc, _ := hex.DecodeString(v.client)
		sc, _ := hex.DecodeString(v.cookie)
		key := [2]uint64{binary.LittleEndian.Uint64(k[:8]), binary.LittleEndian.Uint64(k[8:])}
		got := serverCookieHash(key, cc, sc[:8], netip.MustParseAddr(v.ip))
		if want := binary.LittleEndian.Uint64(sc[8:]); got != want {
			t.Errorf("%s from %s: hash %016x, want %x", v.client, v.ip, got, sc[8:])
		}
		keys := &cookieSecrets{cur: key}
		now := binary.BigEndian.Uint32(sc[4:]) + 100
		if _, ok := checkServerCookie(keys, cc, sc, netip.MustParseAddr(v.ip), now); !ok {
			t.Errorf("%s: own cookie not valid", v.cookie)
		}
	}
}

// cookieQuery is a query for example.com A with a COOKIE option of hex data.
func cookieQuery(t testing.TB, data string) []byte {
	t.Helper()
	q := newQuery("example.com.", mdns.TypeA)
	q.SetEdns0(1232, false)
	opt := q.IsEdns0()
	opt.Option = append(opt.Option, &mdns.EDNS0_COOKIE{Code: mdns.EDNS0COOKIE, Cookie: data})
	raw, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// replyCookie is the reply's COOKIE option data in hex, "" if none.
func replyCookie(r *mdns.Msg) string {
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if c, ok := o.(*mdns.EDNS0_COOKIE); ok {
				return c.Cookie
			}
		}
	}
	return ""
}

func cookieServer(t testing.TB, rrl RRLConfig) (*Server, *uint32) {
	t.Helper()
	var s *Server
	if rrl.Rate > 0 {
		s, _ = rrlServer(t, rrl)
	} else {
		s = newTestServer(t)
	}
	if err := s.EnableCookies(); err != nil {
		t.Fatal(err)
	}
	now := uint32(1_800_000_000)
	s.cookieClock = func() uint32 { return now }
	return s, &now
}

// TestCookies: a client cookie alone gets a normal answer and a server
// cookie; presenting it is valid (the same cookie comes back while young,
// a fresh one after 30 minutes, and after one rotation of the secret); it
// is not valid from another address, after two rotations or an hour, or
// altered, and then a fresh cookie comes with a normal answer; malformed
// lengths get FORMERR without a cookie.
func TestCookies(t *testing.T) {
	s, now := cookieServer(t, RRLConfig{})
	h := s.NewHandler(0)
	const cc = "0102030405060708"
	const src = "127.0.0.5:4000"
	r := serveFrom(t, h, cookieQuery(t, cc), src)
	sc := replyCookie(r)
	if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 || len(sc) != 48 || sc[:16] != cc || sc[16:18] != "01" {
		t.Fatalf("client cookie only: rcode %d, %d answers, cookie %q", r.Rcode, len(r.Answer), sc)
	}
	valid := func(cookie, from string) bool {
		q := cookieQuery(t, cookie)
		h.Publish() // a new batch: the handler reads the clock again
		var qm query
		return h.parse(q, &qm) == mdns.RcodeSuccess && h.cookie(q, qm.cookieOff, qm.cookieLen, netip.MustParseAddrPort(from).Addr()) == cookieValid
	}
	if !valid(sc, src) || valid(sc, "127.0.0.6:4000") || valid(sc[:40]+"00000000", src) {
		t.Error("a server cookie is valid for its client address and intact only")
	}
	if r := serveFrom(t, h, cookieQuery(t, sc), src); replyCookie(r) != sc || len(r.Answer) != 1 {
		t.Errorf("a young valid cookie comes back unchanged: %q, want %q", replyCookie(r), sc)
	}
	*now += cookieRenew + 1
	if r := serveFrom(t, h, cookieQuery(t, sc), src); replyCookie(r) == sc || len(replyCookie(r)) != 48 {
		t.Errorf("a cookie over 30 minutes old is renewed: %q", replyCookie(r))
	}
	if err := s.RotateCookieSecret(); err != nil {
		t.Fatal(err)
	}
	if !valid(sc, src) {
		t.Error("the previous secret's cookies stay valid after one rotation")
	}
	*now += cookieMaxAge
	if valid(sc, src) {
		t.Error("a cookie over an hour old is valid")
	}
	*now -= cookieMaxAge
	if err := s.RotateCookieSecret(); err != nil {
		t.Fatal(err)
	}
	if valid(sc, src) {
		t.Error("a cookie is valid after two rotations")
	}
	if r := serveFrom(t, h, cookieQuery(t, sc), src); r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 || replyCookie(r) == sc {
		t.Errorf("an invalid server cookie over UDP gets a normal answer and a fresh cookie: %v", r)
	}
	for _, bad := range []string{"01020304050607", cc + "01", cc + "010203040506ff", cc + "010203040506070809101112131415161718192021222324252627282930313233"} {
		if r := serveFrom(t, h, cookieQuery(t, bad), src); r.Rcode != mdns.RcodeFormatError || replyCookie(r) != "" {
			t.Errorf("COOKIE of %d bytes: %s with cookie %q, want FORMERR", len(bad)/2, mdns.RcodeToString[r.Rcode], replyCookie(r))
		}
	}
}

// TestCookiesAndRRL: with the bucket empty, a client presenting a valid
// server cookie is answered in full; one with only a client cookie gets
// BADCOOKIE and a server cookie in place of the slipped TC reply.
func TestCookiesAndRRL(t *testing.T) {
	s, _ := cookieServer(t, RRLConfig{Rate: 5, Slip: 1})
	h := s.NewHandler(0)
	const src = "127.0.0.5:4000"
	for range 5 {
		if r := serveFrom(t, h, packed(t, "example.com.", mdns.TypeA, true), src); len(r.Answer) != 1 {
			t.Fatal("the bucket's first five answers")
		}
	}
	if r := serveFrom(t, h, packed(t, "example.com.", mdns.TypeA, true), src); !r.Truncated || len(r.Answer) != 0 {
		t.Fatalf("no cookie, over the rate: %v, want TC", r)
	}
	r := serveFrom(t, h, cookieQuery(t, "0102030405060708"), src)
	if r.Rcode != mdns.RcodeBadCookie || r.Truncated || len(r.Answer) != 0 || len(replyCookie(r)) != 48 {
		t.Fatalf("client cookie, over the rate: %s TC %v %d answers cookie %q, want BADCOOKIE with a server cookie",
			mdns.RcodeToString[r.Rcode], r.Truncated, len(r.Answer), replyCookie(r))
	}
	for range 20 {
		if r := serveFrom(t, h, cookieQuery(t, replyCookie(r)), src); r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("valid server cookie, over the rate: %v, want the answer (exempt)", r)
		}
	}
	if h.c[0].responses[mdns.RcodeBadCookie] != 1 {
		t.Errorf("BADCOOKIE responses counted: %d", h.c[0].responses[mdns.RcodeBadCookie])
	}
}

// FuzzCookieOption: findCookie never reads outside the options, and what it
// returns is a COOKIE option's data of a length RFC 7873 allows.
func FuzzCookieOption(f *testing.F) {
	for _, s := range []string{"", "000a00080102030405060708", "000a0009010203040506070809", "000300000008000401020304000a0018" + "01020304050607080100000011223344aabbccddeeff0011", "000a0028", "000a"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, opts []byte) {
		off, n, st := findCookie(opts)
		switch st {
		case cookieClient:
			if off < 4 || off+n > len(opts) || binary.BigEndian.Uint16(opts[off-4:]) != mdns.EDNS0COOKIE || int(binary.BigEndian.Uint16(opts[off-2:])) != n {
				t.Fatalf("off %d n %d in % x", off, n, opts)
			}
			if n != clientCookieLen && (n < clientCookieLen+8 || n > maxCookieLen) {
				t.Fatalf("accepted a cookie of %d bytes", n)
			}
			if n == clientCookieLen+serverCookieLen {
				checkServerCookie(&cookieSecrets{hasPrev: true}, opts[off:off+8], opts[off+8:off+n], netip.IPv6Loopback(), 0)
			}
		case cookieNone, cookieMalformed:
			if off != -1 || n != 0 {
				t.Fatalf("no cookie but off %d n %d", off, n)
			}
		default:
			t.Fatalf("state %d", st)
		}
	})
}

// FuzzServePacketCookiesRRL is FuzzServePacket with cookies and a low rate
// limit on: queries with cookie options of every shape, passed, slipped
// (TC or BADCOOKIE) or dropped.
func FuzzServePacketCookiesRRL(f *testing.F) {
	for _, c := range []string{"0102030405060708", "01020304050607080100000011223344aabbccddeeff0011", "0102030405"} {
		f.Add(cookieQuery(f, c), false)
		f.Add(cookieQuery(f, c), true)
	}
	f.Add(packed(f, "x.apps.example.com.", mdns.TypeTXT, true), false)
	s, _ := cookieServer(f, RRLConfig{Rate: 2, Slip: 2})
	fuzzServe(f, s)
}
