package dns

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestReloadPerZone: a reload where one file is broken keeps that zone's
// old version, gives the other zone its new one, and names the broken
// file; a broken file for a zone never loaded is reported and not served.
func TestReloadPerZone(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "a.zone"), filepath.Join(dir, "b.zone")
	zone := func(origin string, serial int, a string) string {
		return strings.ReplaceAll(xfrZone(serial, a), "x.test.", origin)
	}
	writeFile(t, good, zone("a.test.", 1, "192.0.2.1"))
	writeFile(t, bad, zone("b.test.", 1, "192.0.2.1"))
	s, err := NewServer([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, good, zone("a.test.", 2, "192.0.2.2"))
	writeFile(t, bad, zone("b.test.", 2, "192.0.2.999"))
	zs, err := s.Reload()
	re, ok := err.(*ReloadError)
	if !ok || zs == nil || len(re.Failures) != 1 || re.Failures[0].File != bad || re.Failures[0].Kept == nil ||
		!strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "line: 6") {
		t.Fatalf("reload with one broken file: zones %v, error %#v (%v)", zs, err, err)
	}
	if got := s.Zones().zone("a.test.").Serial; got != 2 {
		t.Errorf("the good zone serves serial %d, want its new version 2", got)
	}
	if got := s.Zones().zone("b.test.").Serial; got != 1 || re.Failures[0].Kept.Serial != 1 {
		t.Errorf("the broken zone serves serial %d, want its old version 1", got)
	}
	h := s.NewHandler(0)
	if r := ask(t, h, newQuery("w.b.test.", mdns.TypeA), 1); len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), "192.0.2.1") {
		t.Errorf("the broken zone's old answer: %v", r.Answer)
	}
	if s.reloadErrors.Load() != 1 || s.reloads.Load() != 0 {
		t.Errorf("a partial reload counts as an error: errors %d, reloads %d", s.reloadErrors.Load(), s.reloads.Load())
	}
	newBad := filepath.Join(dir, "c.zone")
	writeFile(t, newBad, "garbage\n")
	zs, err = s.Reload()
	re, _ = err.(*ReloadError)
	if zs == nil || re == nil || len(re.Failures) != 2 || zs.zone("a.test.") == nil || zs.zone("b.test.") == nil {
		t.Fatalf("a new broken file: %v (%v)", err, zs)
	}
	for _, f := range re.Failures {
		if (f.File == newBad) != (f.Kept == nil) {
			t.Errorf("failure %s: kept %v", f.File, f.Kept)
		}
	}
	writeFile(t, good, "garbage\n")
	if zs, err := s.Reload(); zs != nil || err == nil {
		t.Errorf("every file broken: zones %v, error %v; want nil zones and the error", zs, err)
	}
}

// TestJournalBounds: the journal keeps at most its versions and records,
// oldest out first, and starts again when a serial does not move forward.
func TestJournalBounds(t *testing.T) {
	var j journals
	j.init(3, 100)
	load := func(serial int, extra ...string) *Zone {
		z, err := ParseZone(strings.NewReader(xfrZone(serial, "192.0.2.1", extra...)), "x")
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	versions := []*Zone{load(1)}
	for i := 2; i <= 6; i++ {
		versions = append(versions, load(i, "v"+strings.Repeat("x", i)+" TXT v"))
		j.record(versions[i-2], versions[i-1])
	}
	cur := versions[5]
	for serial, ok := range map[uint32]bool{1: false, 2: false, 3: true, 4: true, 5: true} {
		if d, got := j.since(cur, serial); got != ok || (ok && d[len(d)-1].to.Serial != 6) {
			t.Errorf("since %d: %v, want %v (3 versions kept)", serial, got, ok)
		}
	}
	var big []string
	for i := range 200 {
		big = append(big, "b"+strings.Repeat("y", i%50)+string(rune('a'+i%26))+" TXT b")
	}
	j.record(cur, load(7, big...))
	if _, ok := j.since(load(7, big...), 6); ok {
		t.Error("a change larger than the record bound was kept")
	}
	if _, ok := j.since(cur, 5); ok {
		t.Error("the journal did not start again after a change it could not hold")
	}
	j.record(load(8), load(8, "z TXT z"))
	if _, ok := j.since(load(8, "z TXT z"), 8); ok {
		t.Error("a change without a serial increase was kept")
	}
}

// TestNotifyOnReload: a reload that changes a serial sends NOTIFY with
// the zone and its new SOA to every target, signed when the target names a
// key, retried when the first goes unanswered, and logs one line per round.
func TestNotifyOnReload(t *testing.T) {
	secret := testKey(t)
	type got struct {
		zone   string
		serial uint32
		signed bool
	}
	var mu sync.Mutex
	var seen []got
	drops := 1 // the first NOTIFY goes unanswered: it must be sent again
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{PacketConn: pc, TsigSecret: map[string]string{"n.key.": secret},
		Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
			mu.Lock()
			defer mu.Unlock()
			if drops > 0 {
				drops--
				return
			}
			g := got{zone: r.Question[0].Name, signed: r.IsTsig() != nil && w.TsigStatus() == nil}
			if len(r.Answer) == 1 {
				g.serial = r.Answer[0].(*mdns.SOA).Serial
			}
			seen = append(seen, g)
			m := new(mdns.Msg)
			m.SetReply(r)
			if r.IsTsig() != nil {
				m.SetTsig("n.key.", mdns.HmacSHA256, 300, time.Now().Unix())
			}
			_ = w.WriteMsg(m)
		})}
	go func() { _ = srv.ActivateAndServe() }()
	defer func() { _ = srv.Shutdown() }()

	file := filepath.Join(t.TempDir(), "x.test.zone")
	writeFile(t, file, xfrZone(1, "192.0.2.1"))
	core, logs := observer.New(zap.InfoLevel)
	s, err := NewServer([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	target := netip.MustParseAddrPort(pc.LocalAddr().String())
	err = s.EnablePrimary(PrimaryConfig{Notify: []NotifyTarget{{Addr: target, Key: "n.key."}},
		TSIG: map[string]string{"n.key.": secret}, Log: zap.New(core), NotifyTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Reload(); err != nil { // same serial: no NOTIFY
		t.Fatal(err)
	}
	writeFile(t, file, xfrZone(2, "192.0.2.2"))
	if _, err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for logs.FilterMessage("NOTIFY round ended").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no NOTIFY round logged: %v", logs.All())
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != (got{"x.test.", 2, true}) {
		t.Fatalf("NOTIFYs answered: %+v; want one, signed, for x.test. serial 2", seen)
	}
	l := logs.FilterMessage("NOTIFY round ended").All()
	if len(l) != 1 || fmt.Sprint(l[0].ContextMap()["serial"]) != "2" || fmt.Sprint(l[0].ContextMap()["tries"]) != "[2]" {
		t.Errorf("round log: %v", l)
	}
}
