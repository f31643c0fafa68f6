package dns

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

// xfrZone is a small zone in versions: serial, and an A record that changes.
func xfrZone(serial int, a string, extra ...string) string {
	return "$ORIGIN x.test.\n$TTL 300\n@ SOA ns hm " + strconv.Itoa(serial) + " 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nw A " + a + "\n" + strings.Join(extra, "\n") + "\n"
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testKey returns a fresh random HMAC-SHA256 secret in base64.
func testKey(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// startPrimary serves file with the primary side on and a transfer server
// on a loopback port, and returns the server and that address.
func startPrimary(t *testing.T, file string, cfg PrimaryConfig) (*Server, string) {
	t.Helper()
	s, err := NewServer([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnablePrimary(cfg); err != nil {
		t.Fatal(err)
	}
	return s, serveTransfers(t, s)
}

// serveTransfers starts a transfer server of s on a loopback port until
// the test ends, and returns its address.
func serveTransfers(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := s.NewTransferServer(ln, TransferOptions{})
	ts.Start()
	t.Cleanup(func() {
		_ = ts.Stop(context.Background())
		s.Close()
	})
	return ln.Addr().String()
}

// xfrIn transfers zone from addr (AXFR, or IXFR from serial when ixfr)
// and returns every record of every message, or the rcode of a refusal.
func xfrIn(t *testing.T, addr, zone string, ixfr bool, serial uint32, key, secret string) ([]mdns.RR, int, error) {
	t.Helper()
	m := new(mdns.Msg)
	if ixfr {
		m.SetIxfr(zone, serial, "ns.x.test.", "hm.x.test.")
	} else {
		m.SetAxfr(zone)
	}
	tr := &mdns.Transfer{DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second}
	if key != "" {
		m.SetTsig(key, mdns.HmacSHA256, 300, time.Now().Unix())
		tr.TsigSecret = map[string]string{key: secret}
	}
	ch, err := tr.In(m, addr)
	if err != nil {
		return nil, 0, err
	}
	var rrs []mdns.RR
	for env := range ch {
		if env.Error != nil {
			var rc int
			if e, ok := env.Error.(*mdns.Error); ok && strings.Contains(e.Error(), "bad xfr rcode") {
				rc, _ = strconv.Atoi(e.Error()[strings.LastIndex(e.Error(), " ")+1:])
			}
			return rrs, rc, env.Error
		}
		rrs = append(rrs, env.RR...)
	}
	return rrs, mdns.RcodeSuccess, nil
}

func sortedStrings(rrs []mdns.RR) []string {
	s := rrStrings(rrs)
	slices.Sort(s)
	return s
}

// TestTransferAXFRAndIXFR: an allowed source gets the zone by AXFR; after
// a reload with a new serial, IXFR from the old serial gets exactly the
// changes (RFC 1995 form), from the current serial the SOA alone, and from
// a serial the journal does not hold the full zone; each counted.
func TestTransferAXFRAndIXFR(t *testing.T) {
	file := filepath.Join(t.TempDir(), "x.test.zone")
	writeFile(t, file, xfrZone(1, "192.0.2.10", "old TXT gone"))
	s, addr := startPrimary(t, file, PrimaryConfig{Allow: []ACLEntry{{Prefix: netip.MustParsePrefix("127.0.0.0/8")}}})

	v1, rc, err := xfrIn(t, addr, "x.test.", false, 0, "", "")
	if err != nil || rc != mdns.RcodeSuccess {
		t.Fatalf("AXFR: rcode %d, %v", rc, err)
	}
	if len(v1) != 6 || v1[0].Header().Rrtype != mdns.TypeSOA || v1[len(v1)-1].Header().Rrtype != mdns.TypeSOA {
		t.Fatalf("AXFR of 4 records + 2 SOA: %v", rrStrings(v1))
	}

	writeFile(t, file, xfrZone(2, "192.0.2.20", "new TXT here"))
	if _, err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	ixfr, _, err := xfrIn(t, addr, "x.test.", true, 1, "", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"x.test. 300 IN SOA ns.x.test. hm.x.test. 2 2 3 4 5",
		"x.test. 300 IN SOA ns.x.test. hm.x.test. 1 2 3 4 5",
		"old.x.test. 300 IN TXT \"gone\"", "w.x.test. 300 IN A 192.0.2.10",
		"x.test. 300 IN SOA ns.x.test. hm.x.test. 2 2 3 4 5",
		"new.x.test. 300 IN TXT \"here\"", "w.x.test. 300 IN A 192.0.2.20",
		"x.test. 300 IN SOA ns.x.test. hm.x.test. 2 2 3 4 5",
	}
	got := rrStrings(ixfr)
	if len(got) == len(want) { // deletions and additions come in any order within their part
		slices.Sort(got[2:4])
		slices.Sort(got[5:7])
	}
	if !slices.Equal(got, want) {
		t.Fatalf("IXFR from 1:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	cur, _, err := xfrIn(t, addr, "x.test.", true, 2, "", "")
	if err != nil || len(cur) != 1 || cur[0].(*mdns.SOA).Serial != 2 {
		t.Fatalf("IXFR from the current serial: %v %v", rrStrings(cur), err)
	}
	full, _, err := xfrIn(t, addr, "x.test.", true, 0, "", "")
	v2, _, err2 := xfrIn(t, addr, "x.test.", false, 0, "", "")
	if err != nil || err2 != nil || !slices.Equal(sortedStrings(full), sortedStrings(v2)) || len(v2) != 6 {
		t.Fatalf("IXFR from a serial not in the journal must be the full zone:\n%v\nAXFR:\n%v (%v %v)", rrStrings(full), rrStrings(v2), err, err2)
	}
	want2 := "x.test./axfr/sent=2 x.test./ixfr/full=1 x.test./ixfr/sent=1 x.test./ixfr/uptodate=1"
	if got := waitCounts(t, s, want2); got != want2 {
		t.Errorf("transfers counted: %s, want %s", got, want2)
	}
}

// waitCounts waits until the transfer counts read want (the server counts
// a transfer after its last message, which the client may have first) and
// returns them.
func waitCounts(t *testing.T, s *Server, want string) string {
	deadline := time.Now().Add(30 * time.Second)
	for {
		keys, vals := s.primary.transferCounts()
		var summary []string
		for i, k := range keys {
			summary = append(summary, k.zone+"/"+k.typ+"/"+k.result+"="+strconv.FormatUint(vals[i], 10))
		}
		got := strings.Join(summary, " ")
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTransferACLAndTSIG: a source outside the ACL and an unsigned
// request where a key is needed get REFUSED; a wrong secret or an unknown
// key get NOTAUTH; the right key gets the zone, its messages signed
// (miekg's client verifies every one).
func TestTransferACLAndTSIG(t *testing.T) {
	file := filepath.Join(t.TempDir(), "x.test.zone")
	var big []string
	for i := range 2000 { // several messages, so the TSIG chain is checked
		big = append(big, "h"+strconv.Itoa(i)+" TXT \""+strings.Repeat("x", 40)+"\"")
	}
	writeFile(t, file, xfrZone(1, "192.0.2.10", big...))
	secret := testKey(t)
	keys := map[string]string{"xfr.key.": secret, "other.key.": testKey(t)}
	s, addr := startPrimary(t, file, PrimaryConfig{
		Allow: []ACLEntry{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}, {Key: "xfr.key."}},
		TSIG:  keys,
	})
	if _, rc, _ := xfrIn(t, addr, "x.test.", false, 0, "", ""); rc != mdns.RcodeRefused {
		t.Errorf("unsigned from outside 10/8: rcode %d, want REFUSED", rc)
	}
	if _, rc, _ := xfrIn(t, addr, "x.test.", false, 0, "other.key.", keys["other.key."]); rc != mdns.RcodeRefused {
		t.Errorf("a valid key the ACL does not name: rcode %d, want REFUSED", rc)
	}
	if r := signedRaw(t, addr, "xfr.key.", testKey(t)); r.Rcode != mdns.RcodeNotAuth || r.IsTsig() == nil || r.IsTsig().Error != mdns.RcodeBadSig || len(r.Answer) != 0 {
		t.Errorf("a wrong secret: want NOTAUTH with TSIG error BADSIG, got\n%v", r)
	}
	if r := signedRaw(t, addr, "unknown.key.", secret); r.Rcode != mdns.RcodeNotAuth || r.IsTsig() == nil || r.IsTsig().Error != mdns.RcodeBadKey || len(r.Answer) != 0 {
		t.Errorf("an unknown key: want NOTAUTH with TSIG error BADKEY, got\n%v", r)
	}
	rrs, rc, err := xfrIn(t, addr, "x.test.", false, 0, "xfr.key.", secret)
	if err != nil || rc != mdns.RcodeSuccess || len(rrs) != 2005 {
		t.Fatalf("signed AXFR: %d records, rcode %d, %v", len(rrs), rc, err)
	}
	if _, rc, _ := xfrIn(t, addr, "nope.test.", false, 0, "", ""); rc != mdns.RcodeNotAuth {
		t.Errorf("a zone not served: rcode %d, want NOTAUTH", rc)
	}
	want := "x.test./axfr/badkey=2 x.test./axfr/refused=2 x.test./axfr/sent=1"
	if got := waitCounts(t, s, want); got != want {
		t.Errorf("transfers counted: %s, want %s", got, want)
	}
}

// signedRaw sends an AXFR for x.test. signed with key and secret, and
// returns the first reply unverified (miekg's client turns a NOTAUTH into
// an error without the message).
func signedRaw(t *testing.T, addr, key, secret string) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	m.SetAxfr("x.test.")
	m.SetTsig(key, mdns.HmacSHA256, 300, time.Now().Unix())
	b, _, err := mdns.TsigGenerate(m, secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	co, err := mdns.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	_ = co.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := co.Write(b); err != nil {
		t.Fatal(err)
	}
	r, err := co.ReadMsg()
	if r == nil {
		t.Fatalf("no reply: %v", err)
	}
	return r
}

// TestTransferNeedsPrimary: without EnablePrimary nobody may transfer.
func TestTransferNeedsPrimary(t *testing.T) {
	s := newTestServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := s.NewTransferServer(ln, TransferOptions{})
	go func() { _ = ts.Serve() }()
	defer func() { _ = ts.Shutdown(context.Background()) }()
	if _, rc, _ := xfrIn(t, ln.Addr().String(), "example.com.", false, 0, "", ""); rc != mdns.RcodeRefused {
		t.Fatalf("AXFR without a primary config: rcode %d, want REFUSED", rc)
	}
	// Other queries are answered as on the shards.
	c := &mdns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err := c.Exchange(newQuery("www.example.com.", mdns.TypeA), ln.Addr().String())
	if err != nil || r.Rcode != mdns.RcodeSuccess || len(r.Answer) == 0 || !r.Authoritative {
		t.Fatalf("A query on the transfer port: %v %v", r, err)
	}
}

func TestParseACLAndNotify(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1": "127.0.0.1/32", "192.0.2.7/24": "192.0.2.0/24", "key:Xfr.Example": "key:xfr.example",
		"::1,key:k": "::1/128,key:k", "::ffff:192.0.2.1": "192.0.2.1/32", "key:k, 10.0.0.0/8": "10.0.0.0/8,key:k",
	} {
		e, err := ParseACL(in)
		if err != nil || e.String() != want {
			t.Errorf("ParseACL(%q) = %q, %v; want %q", in, e, err, want)
		}
	}
	for _, bad := range []string{"", "key:", "nope", "10.0.0.0/8,11.0.0.0/8", "key:a,key:b", "10.0.0.0/33", "key:A00 .", `key:a\\.b`} {
		if _, err := ParseACL(bad); err == nil {
			t.Errorf("ParseACL(%q) accepted", bad)
		}
	}
	for in, want := range map[string]string{"127.0.0.1:53": "127.0.0.1:53", "[::1]:5300,key:K": "[::1]:5300,key:k"} {
		n, err := ParseNotify(in)
		if err != nil || n.String() != want {
			t.Errorf("ParseNotify(%q) = %q, %v; want %q", in, n, err, want)
		}
	}
	for _, bad := range []string{"", "127.0.0.1", "host:53", "127.0.0.1:0", "127.0.0.1:53,k", "127.0.0.1:53,key:"} {
		if _, err := ParseNotify(bad); err == nil {
			t.Errorf("ParseNotify(%q) accepted", bad)
		}
	}
	s := newTestServer(t)
	if err := s.EnablePrimary(PrimaryConfig{Allow: []ACLEntry{{Key: "missing."}}}); err == nil || !strings.Contains(err.Error(), "no TSIG key named missing") {
		t.Errorf("an ACL naming a key not given: %v", err)
	}
}

// FuzzParseACL: any input parses or fails without a panic, and what
// parses reads back the same.
func FuzzParseACL(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.0.0.0/8,key:x", "key:a.b", "::1", "", ",", "key:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseACL(s)
		if err != nil {
			return
		}
		if e2, err := ParseACL(e.String()); err != nil || e2 != e {
			t.Fatalf("%q -> %q -> %q, %v", s, e, e2, err)
		}
	})
}

// FuzzParseNotify: as FuzzParseACL, for --notify.
func FuzzParseNotify(f *testing.F) {
	for _, s := range []string{"127.0.0.1:53", "[::1]:53,key:k", "1.2.3.4:1,key:", ":53"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNotify(s)
		if err != nil {
			return
		}
		if n2, err := ParseNotify(n.String()); err != nil || n2 != n {
			t.Fatalf("%q -> %q -> %q, %v", s, n, n2, err)
		}
	})
}

// TestTransferSignedWithoutKeys: a server with no TSIG keys at all must
// not take a signed request as verified (miekg verifies only with keys).
func TestTransferSignedWithoutKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "x.test.zone")
	writeFile(t, file, xfrZone(1, "192.0.2.10"))
	_, addr := startPrimary(t, file, PrimaryConfig{Allow: []ACLEntry{{Prefix: netip.MustParsePrefix("127.0.0.0/8")}}})
	if r := signedRaw(t, addr, "any.key.", testKey(t)); r.Rcode != mdns.RcodeNotAuth || r.IsTsig() == nil || r.IsTsig().Error != mdns.RcodeBadKey || len(r.Answer) != 0 {
		t.Errorf("a signed AXFR to a server without keys: want NOTAUTH, BADKEY; got\n%v", r)
	}
}

// TestIXFROverUDP: an IXFR over UDP from a source the ACL allows by
// address gets the current SOA alone (RFC 1995 2); from another source,
// or from anyone without a primary config, REFUSED.
func TestIXFROverUDP(t *testing.T) {
	file := filepath.Join(t.TempDir(), "x.test.zone")
	writeFile(t, file, xfrZone(7, "192.0.2.10"))
	s, err := NewServer([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	q := new(mdns.Msg)
	q.SetIxfr("x.test.", 3, "ns.x.test.", "hm.x.test.")
	h := s.NewHandler(0)
	if r := askFrom(t, h, q, "127.0.0.1:5300"); r.Rcode != mdns.RcodeRefused {
		t.Fatalf("IXFR over UDP without a primary config: %v", r)
	}
	if err := s.EnablePrimary(PrimaryConfig{Allow: []ACLEntry{{Prefix: netip.MustParsePrefix("127.0.0.0/8")}}}); err != nil {
		t.Fatal(err)
	}
	r := askFrom(t, h, q, "127.0.0.1:5300")
	if r.Rcode != mdns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 || r.Answer[0].(*mdns.SOA).Serial != 7 {
		t.Fatalf("IXFR over UDP from an allowed source: want the current SOA alone, got\n%v", r)
	}
	if r := askFrom(t, h, q, "192.0.2.1:5300"); r.Rcode != mdns.RcodeRefused {
		t.Fatalf("IXFR over UDP from a source not allowed: %v", r)
	}
	q.SetIxfr("nope.test.", 3, "ns.x.test.", "hm.x.test.")
	if r := askFrom(t, h, q, "127.0.0.1:5300"); r.Rcode != mdns.RcodeNotAuth {
		t.Fatalf("IXFR over UDP for a zone not served: %v", r)
	}
}

// askFrom serves q over UDP as if from src and returns the reply.
func askFrom(t *testing.T, h *Handler, q *mdns.Msg, src string) *mdns.Msg {
	t.Helper()
	raw, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	rq := packet.NewReplyQueue(1, 65535, 65535)
	p := &packet.Packet{Data: raw, Src: netip.MustParseAddrPort(src), Proto: packet.UDP}
	if err := h.ServePacket(rq.Begin(p), p); err != nil {
		t.Fatal(err)
	}
	r := new(mdns.Msg)
	if err := r.Unpack(rq.Replies()[0].Data); err != nil {
		t.Fatal(err)
	}
	return r
}
