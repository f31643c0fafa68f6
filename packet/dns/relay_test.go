package dns

import (
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// notifyCatcher answers NOTIFY on a loopback UDP port and records the
// serial of each.
type notifyCatcher struct {
	addr    netip.AddrPort
	mu      sync.Mutex
	serials []uint32
}

func startNotifyCatcher(t *testing.T) *notifyCatcher {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &notifyCatcher{addr: netip.MustParseAddrPort(pc.LocalAddr().String())}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		if r.Opcode == mdns.OpcodeNotify && len(r.Answer) == 1 {
			if soa, ok := r.Answer[0].(*mdns.SOA); ok {
				c.mu.Lock()
				c.serials = append(c.serials, soa.Serial)
				c.mu.Unlock()
			}
		}
		m := new(mdns.Msg)
		m.SetReply(r)
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return c
}

// wait polls until the serials received read want.
func (c *notifyCatcher) wait(t *testing.T, want ...uint32) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.mu.Lock()
		got := append([]uint32(nil), c.serials...)
		c.mu.Unlock()
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("NOTIFY serials %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSecondaryRelaysTransfers: a secondary that is a primary too passes
// each transferred version on: NOTIFY to its own secondaries, IXFR out of
// the differences between the versions it transferred in, the zone's
// source "transfer"; an expired zone is not transferred out (SERVFAIL) and
// sends no NOTIFY; the transfer counters of both directions for one zone
// gather without a repeated series.
func TestSecondaryRelaysTransfers(t *testing.T) {
	p := startFakePrimary(t, 1, nil)
	s, z := newSecondaryServer(t, p, "", nil, "")
	now := time.Now()
	s.sec.now = func() time.Time { return now }
	c := startNotifyCatcher(t)
	err := s.EnablePrimary(PrimaryConfig{Allow: []ACLEntry{{Prefix: netip.MustParsePrefix("127.0.0.0/8")}},
		Notify: []NotifyTarget{{Addr: c.addr}}, NotifyTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTransfers(t, s)

	s.check(z)
	c.wait(t, 1)
	if cur := s.Zones().zone("sec.test."); cur == nil || cur.Serial != 1 || cur.Source != "transfer" {
		t.Fatalf("after the first transfer: %+v", cur)
	}
	p.set(func(p *fakePrimary) { p.serial = 2 })
	s.check(z)
	c.wait(t, 1, 2)
	rrs, rc, err := xfrIn(t, addr, "sec.test.", true, 1, "", "")
	if err != nil || rc != mdns.RcodeSuccess {
		t.Fatalf("IXFR out from 1: rcode %d, %v", rc, err)
	}
	got := strings.Join(rrStrings(rrs), "\n")
	for _, want := range []string{"www.sec.test. 300 IN A 192.0.2.2", "www.sec.test. 300 IN A 192.0.2.3", "even.sec.test. 300 IN A 192.0.2.200"} {
		if !strings.Contains(got, want) {
			t.Errorf("IXFR out from serial 1 lacks %q:\n%s", want, got)
		}
	}
	if n := waitCounts(t, s, "sec.test./ixfr/sent=1"); n != "sec.test./ixfr/sent=1" {
		t.Fatalf("transfers out: %s, want the IXFR from the journal (sent, not full)", n)
	}

	p.stop()
	now = now.Add(61 * time.Second) // the SOA expire is 60 s
	s.check(z)
	s.expireIfDue(z)
	if !z.expired.Load() {
		t.Fatal("the zone did not expire")
	}
	if _, rc, _ := xfrIn(t, addr, "sec.test.", false, 0, "", ""); rc != mdns.RcodeServerFailure {
		t.Errorf("AXFR out of an expired zone: rcode %d, want SERVFAIL", rc)
	}
	c.wait(t, 1, 2) // the expiry is no new version

	z.transfers[xfrAXFR][xfrFailed].Add(1)
	s.primary.count("sec.test.", mdns.TypeAXFR, xfrCut)
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather with transfers both ways: %v", err)
	}
	results := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "shardd_dns_transfers_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var k string
			for _, l := range m.GetLabel() {
				k += l.GetValue() + "/"
			}
			results[k] = m.GetCounter().GetValue()
		}
	}
	// Labels in name order: result, type, zone.
	for k, want := range map[string]float64{"failed/axfr/sec.test./": 1, "cut/axfr/sec.test./": 1, "ok/ixfr/sec.test./": 1, "ok/axfr/sec.test./": 1, "sent/ixfr/sec.test./": 1, "refused/axfr/sec.test./": 1} {
		if results[k] != want {
			t.Errorf("shardd_dns_transfers_total %s = %v, want %v (all: %v)", k, results[k], want, results)
		}
	}
}

// TestReloadFileForSecondaryFails: a zone file that appears for a
// secondary zone's origin fails on its own at the next reload (the
// transferred zone keeps serving); the other files take their new versions.
func TestReloadFileForSecondaryFails(t *testing.T) {
	p := startFakePrimary(t, 3, nil)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "x.test.zone"), xfrZone(1, "192.0.2.1"))
	s, err := NewServer([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnableSecondaries(SecondaryConfig{Zones: []Secondary{{Zone: "sec.test", Primaries: []netip.AddrPort{p.addr}}}}); err != nil {
		t.Fatal(err)
	}
	s.check(s.sec.zones[0])
	writeFile(t, filepath.Join(dir, "sec.test.zone"), strings.Replace(xfrZone(9, "192.0.2.9"), "x.test.", "sec.test.", -1))
	writeFile(t, filepath.Join(dir, "x.test.zone"), xfrZone(2, "192.0.2.2"))
	zs, err := s.Reload()
	var re *ReloadError
	if !errors.As(err, &re) || len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Err.Error(), "is a secondary zone") {
		t.Fatalf("reload: %v", err)
	}
	if sec := zs.zone("sec.test."); sec == nil || sec.Serial != 3 || sec.Source != "transfer" {
		t.Errorf("sec.test after the reload: %+v, want the transferred serial 3", sec)
	}
	if x := zs.zone("x.test."); x == nil || x.Serial != 2 {
		t.Errorf("x.test after the reload: %+v, want serial 2", x)
	}
}

// TestSignedNotifyOverTransferServer: a TSIG-signed NOTIFY that reaches
// the transfer server (--xfr-listen on the port's TCP, as Knot DNS sends
// NOTIFY) is checked on the bytes as they came: signed NOERROR, and a
// check of the zone queued. Repacked, its MAC did not verify (BADSIG); and
// miekg's own TSIG check lowers ARCOUNT in the buffer it read (FORMERR).
func TestSignedNotifyOverTransferServer(t *testing.T) {
	keys, k, _, s, z := tsigSecondary(t)
	if err := s.EnablePrimary(PrimaryConfig{TSIG: keys.Secrets()}); err != nil {
		t.Fatal(err)
	}
	addr := serveTransfers(t, s)
	m := new(mdns.Msg)
	m.SetNotify("sec.test.")
	soa, err := mdns.NewRR("sec.test. 300 IN SOA ns1.sec.test. hostmaster.sec.test. 4 3600 600 60 300")
	if err != nil {
		t.Fatal(err)
	}
	m.Answer = []mdns.RR{soa}
	m.Compress = true // as Knot sends it; a repack (uncompressed) would change the bytes the MAC covers
	m.SetTsig(k.Name, k.Algorithm, 300, time.Now().Unix())
	c := &mdns.Client{Net: "tcp", Timeout: 10 * time.Second, TsigSecret: keys.Secrets()}
	r, _, err := c.Exchange(m, addr)
	if err != nil || r.Rcode != mdns.RcodeSuccess || r.IsTsig() == nil || !r.Authoritative {
		t.Fatalf("signed NOTIFY over TCP: %v (verified by the client: %v)", r, err)
	}
	if n := z.notifies[notifyAccepted].Load(); n != 1 {
		t.Errorf("%d NOTIFYs accepted, want 1", n)
	}
}

// TestNotifySignedWithKeyAlgorithm: NOTIFY is signed with the algorithm
// the key file gives the key (here HMAC-SHA512), which the secondary
// verifies; it was always HMAC-SHA256.
func TestNotifySignedWithKeyAlgorithm(t *testing.T) {
	secret := testKey(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	srv := &mdns.Server{PacketConn: pc, TsigSecret: map[string]string{"n.key.": secret},
		Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
			tsig := r.IsTsig()
			if tsig == nil || w.TsigStatus() != nil {
				got <- "unsigned or not verified"
				return // no answer: the round retries, then gives up
			}
			got <- tsig.Algorithm
			m := new(mdns.Msg)
			m.SetReply(r)
			m.SetTsig("n.key.", tsig.Algorithm, 300, time.Now().Unix())
			_ = w.WriteMsg(m)
		})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	defer func() { _ = srv.Shutdown() }()

	file := filepath.Join(t.TempDir(), "x.test.zone")
	writeFile(t, file, xfrZone(1, "192.0.2.1"))
	s, err := NewServer([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	err = s.EnablePrimary(PrimaryConfig{Notify: []NotifyTarget{{Addr: netip.MustParseAddrPort(pc.LocalAddr().String()), Key: "n.key."}},
		TSIG: map[string]string{"n.key.": secret}, TSIGAlgorithms: map[string]string{"n.key.": mdns.HmacSHA512}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	writeFile(t, file, xfrZone(2, "192.0.2.2"))
	if _, err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-got:
		if a != mdns.HmacSHA512 {
			t.Fatalf("NOTIFY: %s, want signed with %s and verified", a, mdns.HmacSHA512)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no NOTIFY came")
	}
}
