package dns

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

// fakePrimary is a primary built on miekg/dns's server, on loopback, that
// serves versions of sec.test and can misbehave on purpose.
type fakePrimary struct {
	addr netip.AddrPort
	key  *TSIGKey

	mu     sync.Mutex
	serial uint32
	ixfr   string // "diff" (default), "full", "bad-diff", "refuse"
	axfr   string // "" or "cut": stops before the final SOA
	asked  []string
	srvs   []*mdns.Server
}

// secVersion is sec.test at serial: www moves with the serial, and one
// name exists only in even serials.
func secVersion(serial uint32) []mdns.RR {
	text := fmt.Sprintf(`$ORIGIN sec.test.
$TTL 300
@	SOA	ns1 hostmaster %d 3600 600 60 300
	NS	ns1
ns1	A	192.0.2.53
www	A	192.0.2.%d
	TXT	"serial %d"
`, serial, serial%250+1, serial)
	if serial%2 == 0 {
		text += "even A 192.0.2.200\n"
	}
	var rrs []mdns.RR
	zp := mdns.NewZoneParser(strings.NewReader(text), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	return rrs
}

func startFakePrimary(t *testing.T, serial uint32, key *TSIGKey) *fakePrimary {
	t.Helper()
	p := &fakePrimary{serial: serial, key: key}
	var l net.Listener
	var pc net.PacketConn
	for range 50 {
		var err error
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", l.Addr().String()); err == nil {
			break
		}
		l.Close()
	}
	p.addr = netip.MustParseAddrPort(l.Addr().String())
	for _, s := range []*mdns.Server{{Listener: l, Handler: p}, {PacketConn: pc, Handler: p}} {
		if key != nil {
			s.TsigSecret = map[string]string{key.Name: key.Secret}
		}
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
		p.srvs = append(p.srvs, s)
	}
	t.Cleanup(p.stop)
	return p
}

func (p *fakePrimary) stop() {
	for _, s := range p.srvs {
		_ = s.Shutdown()
	}
	p.srvs = nil
}

func (p *fakePrimary) set(f func(p *fakePrimary)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *fakePrimary) ServeDNS(w mdns.ResponseWriter, r *mdns.Msg) {
	p.mu.Lock()
	serial, ixfr, axfr := p.serial, p.ixfr, p.axfr
	p.asked = append(p.asked, mdns.TypeToString[r.Question[0].Qtype])
	p.mu.Unlock()
	m := new(mdns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if t := r.IsTsig(); p.key != nil && (t == nil || w.TsigStatus() != nil) {
		m.Rcode = mdns.RcodeNotAuth
		_ = w.WriteMsg(m)
		return
	}
	sign := func(m *mdns.Msg) {
		if p.key != nil {
			m.SetTsig(p.key.Name, p.key.Algorithm, 300, time.Now().Unix())
		}
	}
	cur := secVersion(serial)
	switch r.Question[0].Qtype {
	case mdns.TypeSOA:
		m.Answer = cur[:1]
	case mdns.TypeAXFR:
		m.Answer = append(cur, cur[0])
		if axfr == "cut" {
			m.Answer = cur
		}
	case mdns.TypeIXFR:
		from := r.Ns[0].(*mdns.SOA).Serial
		m.Answer = ixfrAnswer(ixfr, secVersion(from), cur)
		if m.Answer == nil {
			m.Rcode = mdns.RcodeNotImplemented
		}
	}
	sign(m)
	_ = w.WriteMsg(m)
}

// ixfrAnswer is the IXFR answer from old to cur in the given mode.
func ixfrAnswer(mode string, old, cur []mdns.RR) []mdns.RR {
	switch mode {
	case "refuse":
		return nil
	case "full":
		return append(slices.Clone(cur), cur[0])
	}
	del, add := diffRRs(old, cur)
	if mode == "bad-diff" {
		del = append(del, &mdns.A{Hdr: mdns.RR_Header{Name: "nothere.sec.test.", Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 1)})
	}
	out := []mdns.RR{cur[0], old[0]}
	out = append(out, del...)
	out = append(out, cur[0])
	out = append(out, add...)
	return append(out, cur[0])
}

// diffRRs returns the records of old not in cur, and of cur not in old
// (SOAs aside).
func diffRRs(old, cur []mdns.RR) (del, add []mdns.RR) {
	in := func(set []mdns.RR, rr mdns.RR) bool {
		return slices.ContainsFunc(set, func(x mdns.RR) bool { return rrKey(x) == rrKey(rr) })
	}
	for _, rr := range old[1:] {
		if !in(cur, rr) {
			del = append(del, rr)
		}
	}
	for _, rr := range cur[1:] {
		if !in(old, rr) {
			add = append(add, rr)
		}
	}
	return del, add
}

// newSecondaryServer is a server with no zone files, secondary for
// sec.test from p (with key, if given), keeping copies in dir.
func newSecondaryServer(t *testing.T, p *fakePrimary, dir string, keys TSIGKeys, key string) (*Server, *secondary) {
	t.Helper()
	s, err := NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := SecondaryConfig{Zones: []Secondary{{Zone: "Sec.Test", Primaries: []netip.AddrPort{p.addr}, Key: key}}, Dir: dir, Keys: keys}
	if err := s.EnableSecondaries(cfg); err != nil {
		t.Fatal(err)
	}
	return s, s.sec.zones[0]
}

// sameZone fails unless z holds exactly the records of want.
func sameZone(t *testing.T, z *Zone, want []mdns.RR) {
	t.Helper()
	var got, exp []string
	for k := range zoneRecords(z) {
		got = append(got, k)
	}
	for _, rr := range want {
		exp = append(exp, rrKey(rr))
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		t.Fatalf("zone records\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
	}
}

func transfers(z *secondary, typ, result int) uint64 { return z.transfers[typ][result].Load() }

// TestSecondaryAXFRThenIXFR: the first check transfers the zone by AXFR,
// the next after a change by IXFR, applying the differences; a check
// without a change transfers nothing.
func TestSecondaryAXFRThenIXFR(t *testing.T) {
	p := startFakePrimary(t, 1, nil)
	s, z := newSecondaryServer(t, p, t.TempDir(), nil, "")
	s.check(z)
	cur := s.served(z)
	if cur == nil || cur.Serial != 1 || transfers(z, xfrAXFR, xfrOK) != 1 {
		t.Fatalf("after the first check: %v, %d AXFRs", cur, transfers(z, xfrAXFR, xfrOK))
	}
	sameZone(t, cur, secVersion(1))
	for serial := uint32(2); serial <= 4; serial++ {
		p.set(func(p *fakePrimary) { p.serial = serial })
		s.check(z)
		sameZone(t, s.served(z), secVersion(serial))
	}
	if n := transfers(z, xfrIXFR, xfrOK); n != 3 {
		t.Errorf("%d IXFRs, want 3", n)
	}
	p.set(func(p *fakePrimary) { p.asked = nil })
	s.check(z)
	p.set(func(p *fakePrimary) {
		if !slices.Equal(p.asked, []string{"SOA"}) {
			t.Errorf("a check without a change asked %v, want only the SOA", p.asked)
		}
	})
	// The answer comes from the new zone.
	r := ask(t, s.NewHandler(0), question("www.sec.test.", mdns.TypeTXT), packet.UDP)
	if len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), `"serial 4"`) || !r.Authoritative {
		t.Errorf("www.sec.test TXT: %v", r)
	}
}

func question(name string, qtype uint16) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	return m
}

// TestSecondaryIXFRFallback: an IXFR answered with the whole zone is
// taken as it is; one whose differences do not apply, or refused, falls
// back to AXFR.
func TestSecondaryIXFRFallback(t *testing.T) {
	p := startFakePrimary(t, 10, nil)
	s, z := newSecondaryServer(t, p, "", nil, "")
	s.check(z)
	for i, c := range []struct {
		mode             string
		ixfrOK, ixfrFail uint64
		axfr             uint64
	}{{"full", 1, 0, 1}, {"bad-diff", 1, 1, 2}, {"refuse", 1, 2, 3}} {
		serial := uint32(11 + i)
		p.set(func(p *fakePrimary) { p.serial, p.ixfr = serial, c.mode })
		s.check(z)
		sameZone(t, s.served(z), secVersion(serial))
		if transfers(z, xfrIXFR, xfrOK) != c.ixfrOK || transfers(z, xfrIXFR, xfrFailed) != c.ixfrFail || transfers(z, xfrAXFR, xfrOK) != c.axfr {
			t.Errorf("%s: IXFR ok %d failed %d, AXFR ok %d; want %d %d %d", c.mode, transfers(z, xfrIXFR, xfrOK),
				transfers(z, xfrIXFR, xfrFailed), transfers(z, xfrAXFR, xfrOK), c.ixfrOK, c.ixfrFail, c.axfr)
		}
	}
}

// TestSecondaryBrokenTransferKeepsCopy: a transfer cut short changes
// nothing: the old zone serves and its copy on disk stays as it was.
func TestSecondaryBrokenTransferKeepsCopy(t *testing.T) {
	p := startFakePrimary(t, 1, nil)
	dir := t.TempDir()
	s, z := newSecondaryServer(t, p, dir, nil, "")
	s.check(z)
	copyPath := filepath.Join(dir, "sec.test.zone")
	before, err := os.ReadFile(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	p.set(func(p *fakePrimary) { p.serial, p.ixfr, p.axfr = 2, "refuse", "cut" })
	if d := s.check(z); d != 600*time.Second {
		t.Errorf("after a failure the next check is in %v, want the SOA retry 600s", d)
	}
	if cur := s.served(z); cur.Serial != 1 || transfers(z, xfrAXFR, xfrFailed) != 1 || z.failures.Load() != 1 {
		t.Fatalf("after a cut AXFR: serial %d, %d failed AXFRs, %d failures", cur.Serial, transfers(z, xfrAXFR, xfrFailed), z.failures.Load())
	}
	sameZone(t, s.served(z), secVersion(1))
	after, _ := os.ReadFile(copyPath)
	if string(after) != string(before) {
		t.Error("the copy on disk changed after a failed transfer")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// TestSecondaryExpire: without a primary for longer than the SOA expire
// the zone answers SERVFAIL; the next successful check brings it back.
func TestSecondaryExpire(t *testing.T) {
	p := startFakePrimary(t, 1, nil)
	s, z := newSecondaryServer(t, p, "", nil, "")
	now := time.Now()
	s.sec.now = func() time.Time { return now }
	s.check(z)
	h := s.NewHandler(0)
	q := question("www.sec.test.", mdns.TypeA)
	p.set(func(p *fakePrimary) { p.ixfr = "refuse" })
	p.stop()
	now = now.Add(59 * time.Second) // expire is 60 s
	s.check(z)
	s.expireIfDue(z)
	if r := ask(t, h, q, packet.UDP); r.Rcode != mdns.RcodeSuccess {
		t.Fatalf("before expire: %s", mdns.RcodeToString[r.Rcode])
	}
	now = now.Add(2 * time.Second)
	s.check(z)
	s.expireIfDue(z)
	q.SetEdns0(1232, false)
	if r := ask(t, h, q, packet.UDP); r.Rcode != mdns.RcodeServerFailure || r.Authoritative || !strings.Contains(r.String(), "EDE: 24") {
		t.Fatalf("after expire: want SERVFAIL without AA, with EDE 24 Invalid Data, got\n%v", r)
	}
	if r := ask(t, h, question("deep.below.sec.test.", mdns.TypeMX), packet.UDP); r.Rcode != mdns.RcodeServerFailure || len(r.Ns) != 0 {
		t.Fatalf("a name below the apex after expire: %v", r)
	}
	if !z.expired.Load() {
		t.Error("not counted as expired")
	}
	p2 := startFakePrimary(t, 1, nil)
	z.Primaries = []netip.AddrPort{p2.addr}
	s.check(z)
	if r := ask(t, h, q, packet.UDP); r.Rcode != mdns.RcodeSuccess || z.expired.Load() {
		t.Fatalf("after a refresh: %s, expired %v", mdns.RcodeToString[r.Rcode], z.expired.Load())
	}
}

// TestSecondaryCopyLoadedAtStart: a new server serves the copy an earlier
// one wrote, before any check, and a copy not refreshed within the expire
// interval serves SERVFAIL at once.
func TestSecondaryCopyLoadedAtStart(t *testing.T) {
	p := startFakePrimary(t, 7, nil)
	dir := t.TempDir()
	s, z := newSecondaryServer(t, p, dir, nil, "")
	s.check(z)
	p.stop()
	s2, z2 := newSecondaryServer(t, p, dir, nil, "")
	sameZone(t, s2.served(z2), secVersion(7))
	if z2.expired.Load() {
		t.Fatal("a fresh copy loaded as expired")
	}
	old := time.Now().Add(-61 * time.Second)
	if err := os.Chtimes(filepath.Join(dir, "sec.test.zone"), old, old); err != nil {
		t.Fatal(err)
	}
	s3, z3 := newSecondaryServer(t, p, dir, nil, "")
	if !z3.expired.Load() {
		t.Fatal("a copy last refreshed past its expire is not expired")
	}
	if r := ask(t, s3.NewHandler(0), question("sec.test.", mdns.TypeSOA), packet.UDP); r.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("expired copy: %s", mdns.RcodeToString[r.Rcode])
	}
}

// TestAttackZoneCopyLink: a link planted where a copy is kept is neither
// read at start nor written through: the new copy replaces the link and
// the file it pointed at stays untouched.
func TestAttackZoneCopyLink(t *testing.T) {
	p := startFakePrimary(t, 1, nil)
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "sec.test.zone")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	s, z := newSecondaryServer(t, p, dir, nil, "")
	if s.served(z) != nil {
		t.Fatal("a zone was loaded through the link")
	}
	s.check(z)
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("the link's target was written: %q", b)
	}
	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&os.ModeSymlink != 0 || fi.Mode().Perm() != 0o640 {
		t.Fatalf("the copy is %v (%v), want a regular file of mode 0640", fi.Mode(), err)
	}
	t.Logf("attack: planted link replaced by the copy, target untouched (%d bytes)", len("precious\n"))
}

// TestSecondaryTSIG: with a key every exchange is signed; a primary with
// another secret refuses and nothing is transferred.
func TestSecondaryTSIG(t *testing.T) {
	_, k, p, s, z := tsigSecondary(t)
	s.check(z)
	if cur := s.served(z); cur == nil || cur.Serial != 3 {
		t.Fatalf("signed AXFR: %v", cur)
	}
	p.set(func(p *fakePrimary) { p.serial = 4 })
	s.check(z)
	if cur := s.served(z); cur.Serial != 4 || transfers(z, xfrIXFR, xfrOK) != 1 {
		t.Fatalf("signed IXFR: serial %d", cur.Serial)
	}
	other := k
	other.Secret = "c2hhcmRkIHdyb25nIGtleSBzaGFyZGQgd3Jvbmcga2V5"
	p2 := startFakePrimary(t, 5, &other)
	z.Primaries = []netip.AddrPort{p2.addr}
	s.check(z)
	if cur := s.served(z); cur.Serial != 4 || z.failures.Load() != 1 || !strings.Contains(z.lastErr, "TSIG") {
		t.Fatalf("wrong key: serial %d, failures %d, error %q", cur.Serial, z.failures.Load(), z.lastErr)
	}
	if strings.Contains(z.lastErr, k.Secret) || strings.Contains(z.lastErr, other.Secret) {
		t.Fatalf("the error shows a secret: %s", z.lastErr)
	}
}

// tsigSecondary is a server secondary for sec.test from a fake primary
// at serial 3, both with knotKeyText's key xfr.
func tsigSecondary(t *testing.T) (TSIGKeys, TSIGKey, *fakePrimary, *Server, *secondary) {
	t.Helper()
	keys, err := ParseTSIGKeys([]byte(knotKeyText))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := keys.Get("xfr")
	p := startFakePrimary(t, 3, &k)
	s, z := newSecondaryServer(t, p, "", keys, "xfr")
	return keys, k, p, s, z
}

// tsigTestSign signs a small message with a key, as a primary would.
type tsigTestSign struct{ k TSIGKey }

func (s tsigTestSign) sign() ([]byte, error) {
	m := new(mdns.Msg)
	m.SetNotify("sec.test.")
	m.SetTsig(s.k.Name, s.k.Algorithm, 300, time.Now().Unix())
	b, _, err := mdns.TsigGenerate(m, s.k.Secret, "", false)
	return b, err
}

// TestAttackNotifyFlood: NOTIFYs from a primary's address (which anyone
// can forge over UDP) as fast as the handler takes them make at most one
// check a second: the primary is not flooded in turn.
func TestAttackNotifyFlood(t *testing.T) {
	p := startFakePrimary(t, 1, nil)
	s, z := newSecondaryServer(t, p, "", nil, "")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		s.RunSecondaries(stop)
		close(done)
	}()
	defer func() {
		close(stop)
		<-done
	}()
	deadline := time.Now().Add(30 * time.Second)
	for transfers(z, xfrAXFR, xfrOK) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no first transfer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.set(func(p *fakePrimary) { p.asked = nil })
	h := s.NewHandler(0)
	raw := notifyMsg(t, "sec.test.")
	src := p.addr.Addr().String() + ":53"
	start := time.Now()
	sent := 0
	for time.Since(start) < 2*time.Second && sent < 200000 {
		serveNotifyFrom(t, h, raw, src)
		sent++
	}
	elapsed := time.Since(start)
	var asked int
	p.set(func(p *fakePrimary) { asked = len(p.asked) })
	if limit := int(elapsed/time.Second) + 2; asked > limit || sent < 100 {
		t.Fatalf("%d NOTIFYs in %v made %d queries to the primary, want at most %d", sent, elapsed, asked, limit)
	}
	accepted := z.notifies[notifyAccepted].Load() + z.notifies[notifyCoalesced].Load()
	if accepted != uint64(sent) {
		t.Errorf("%d NOTIFYs counted, %d sent", accepted, sent)
	}
	t.Logf("attack: %d forged NOTIFYs in %v: %d queries to the primary", sent, elapsed.Round(time.Millisecond), asked)
}

// TestReloadKeepsSecondaries: a HUP reload re-reads the zone files and
// keeps serving the transferred zones.
func TestReloadKeepsSecondaries(t *testing.T) {
	p := startFakePrimary(t, 5, nil)
	s := newTestServer(t)
	if err := s.EnableSecondaries(SecondaryConfig{Zones: []Secondary{{Zone: "sec.test", Primaries: []netip.AddrPort{p.addr}}}}); err != nil {
		t.Fatal(err)
	}
	z := s.sec.zones[0]
	s.check(z)
	zs, err := s.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if len(zs.List) != len(testZones)+1 || s.Zones() != zs {
		t.Fatalf("after a reload %d zones, want %d", len(zs.List), len(testZones)+1)
	}
	sameZone(t, zs.byOrigin[z.wire], secVersion(5))
	if err := s.EnableSecondaries(SecondaryConfig{Zones: []Secondary{{Zone: "example.com", Primaries: []netip.AddrPort{p.addr}}}}); err == nil || !strings.Contains(err.Error(), "both as a file and as a secondary") {
		t.Errorf("a zone both from a file and transferred: %v", err)
	}
}
