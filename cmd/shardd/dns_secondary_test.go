//go:build linux

package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// primaryZones are the zones a Knot primary serves to shardd: notify.test
// refreshes only hourly (a change must come by NOTIFY), expire.test every
// second and expires after 4 s without a primary.
var primaryZones = map[string]string{
	"notify.test": `$ORIGIN notify.test.
$TTL 300
@	SOA	ns1 hostmaster SERIAL 3600 3600 1209600 300
	NS	ns1
	NS	ns.elsewhere.example.
	MX	10 mail
ns1	A	192.0.2.53
mail	A	192.0.2.25
www	A	192.0.2.80
	AAAA	2001:db8::80
alias	CNAME	www
txt	TXT	"version SERIAL"
*.wild	A	192.0.2.99
sub	NS	ns.sub
ns.sub	A	192.0.2.54
`,
	"expire.test": `$ORIGIN expire.test.
$TTL 300
@	SOA	ns1 hostmaster SERIAL 1 1 4 300
	NS	ns1
ns1	A	192.0.2.53
www	A	192.0.2.81
`,
}

// knotPrimary is a Knot DNS serving primaryZones to shardd.
type knotPrimary struct {
	addr    netip.AddrPort
	dir     string
	conf    string
	proc    *testkit.Process
	secret  string // the TSIG key "xfr", base64
	keyFile string // the same key as keymgr -t printed it
}

// startKnotPrimary runs knotd on a free loopback port with primaryZones at
// serial, sending NOTIFY to shardd at notifyTo and allowing transfers
// signed with the TSIG key "xfr" (made by keymgr -t) only.
func startKnotPrimary(t *testing.T, serial int, notifyTo int) *knotPrimary {
	t.Helper()
	knotd := requireTool(t, "knotd")
	out, err := exec.Command(requireTool(t, "keymgr"), "-t", "xfr", "hmac-sha256").Output()
	if err != nil {
		t.Fatalf("keymgr -t: %v", err)
	}
	secret := regexp.MustCompile(`secret: (\S+)`).FindStringSubmatch(string(out))[1]
	k := &knotPrimary{dir: t.TempDir(), secret: secret}
	k.keyFile = filepath.Join(k.dir, "xfr.key")
	if err := os.WriteFile(k.keyFile, out, 0o600); err != nil {
		t.Fatal(err)
	}
	k.addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(testkit.FreePort(t)))
	text := fmt.Sprintf(`server:
  listen: 127.0.0.1@%d
  rundir: %s
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
database:
  storage: %s
log:
  - target: stderr
    any: info
%s
remote:
  - id: shardd
    address: 127.0.0.1@%d
    key: xfr
acl:
  - id: xfr
    address: 127.0.0.0/8
    key: xfr
    action: transfer
template:
  - id: default
    notify: shardd
    acl: xfr
    zonefile-load: difference
    zonefile-sync: -1
    journal-content: changes
    semantic-checks: off
zone:
`, k.addr.Port(), k.dir, k.dir, strings.TrimSuffix(string(out[strings.Index(string(out), "key:"):]), "\n"), notifyTo)
	for name := range primaryZones {
		text += fmt.Sprintf("  - domain: %s\n    file: %s\n", name, filepath.Join(k.dir, name+".zone"))
	}
	k.conf = filepath.Join(k.dir, "knot.conf")
	if err := os.WriteFile(k.conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	k.writeZones(t, serial)
	k.proc = testkit.Start(t, "knotd", exec.Command(knotd, "-c", k.conf))
	k.waitSerial(t, serial)
	return k
}

// writeZones writes every zone at serial.
func (k *knotPrimary) writeZones(t *testing.T, serial int) {
	t.Helper()
	for name, text := range primaryZones {
		text = strings.ReplaceAll(text, "SERIAL", fmt.Sprint(serial))
		if err := os.WriteFile(filepath.Join(k.dir, name+".zone"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// waitSerial waits until Knot serves notify.test at serial.
func (k *knotPrimary) waitSerial(t *testing.T, serial int) {
	t.Helper()
	waitDigShort(t, k.addr, "notify.test", "SOA", fmt.Sprintf(" %d ", serial), k.proc.Stderr)
}

// bump changes every zone to serial and has Knot reload them (it then
// sends NOTIFY and keeps the difference for IXFR).
func (k *knotPrimary) bump(t *testing.T, serial int) {
	t.Helper()
	k.writeZones(t, serial)
	if out, err := exec.Command(requireTool(t, "knotc"), "-c", k.conf, "zone-reload").CombinedOutput(); err != nil {
		t.Fatalf("knotc zone-reload: %v\n%s", err, out)
	}
	k.waitSerial(t, serial)
}

// secondaryDaemon starts shardd on port as a secondary of k for both zones.
func secondaryDaemon(t *testing.T, k *knotPrimary, port int, keyFile, zoneDir string) (*daemon, string) {
	t.Helper()
	args := []string{"--handler", "dns", "--proto", "udp,tcp", "--shards", "2", "--metrics", "127.0.0.1:0", "--tsig-keys", keyFile}
	for name := range primaryZones {
		args = append(args, "--secondary", fmt.Sprintf("%s@%s/key=xfr", name, k.addr))
	}
	if zoneDir != "" {
		args = append(args, "--zone-dir", zoneDir)
	}
	d := startDaemon(t, append(args, fmt.Sprintf("127.0.0.1:%d", port))...)
	d.WaitLine(t, "listening")
	url := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	return d, url
}

// digAnswer asks to with dig.
func digAnswer(t *testing.T, to netip.AddrPort, args ...string) digReply {
	t.Helper()
	return dig(t, "dig", to, append([]string{"+nocmd"}, args...)...)
}

// waitAnswer polls until shardd answers q with status and the answer
// contains want.
func waitAnswer(t *testing.T, to netip.AddrPort, status, want string, q ...string) {
	t.Helper()
	var last digReply
	deadline := time.Now().Add(testkit.WaitTimeout)
	for {
		last = digAnswer(t, to, q...)
		if last.status == status && strings.Contains(strings.Join(last.answer, "\n"), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dig %v: want %s with %q, last:\n%s", q, status, want, last.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var secondaryQuestions = [][]string{
	{"notify.test", "SOA"}, {"notify.test", "NS"}, {"notify.test", "MX"}, {"www.notify.test", "A"}, {"www.notify.test", "AAAA"},
	{"alias.notify.test", "A"}, {"txt.notify.test", "TXT"}, {"a.wild.notify.test", "A"}, {"x.sub.notify.test", "A"},
	{"nope.notify.test", "A"}, {"www.notify.test", "MX"}, {"www.expire.test", "A"},
}

// secondarySameAsKnot compares shardd's answers to Knot's for secondaryQuestions.
func secondarySameAsKnot(t *testing.T, knot, ours netip.AddrPort) {
	t.Helper()
	for _, q := range secondaryQuestions {
		sameAsKnot(t, knot, ours, append([]string{"+nocmd"}, q...)...)
	}
}

// knotFollowed is a Knot primary at serial 2026113001 and a shardd
// secondary of it that has transferred notify.test.
type knotFollowed struct {
	k       *knotPrimary
	d       *daemon
	url     string // shardd's metrics
	ours    netip.AddrPort
	port    int
	zoneDir string
}

func followKnot(t *testing.T) knotFollowed {
	t.Helper()
	f := knotFollowed{port: testkit.FreePort(t), zoneDir: t.TempDir()}
	f.k = startKnotPrimary(t, 2026113001, f.port)
	f.d, f.url = secondaryDaemon(t, f.k, f.port, f.k.keyFile, f.zoneDir)
	f.ours = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(f.port))
	waitAnswer(t, f.ours, "NOERROR", "2026113001", "notify.test", "SOA")
	return f
}

// TestSecondaryFromKnot: shardd follows a Knot DNS primary with TSIG:
// the first transfer is an AXFR, a change on the primary arrives by NOTIFY
// and IXFR (the zone refreshes only hourly), answers match Knot's, and
// after both stop a restarted shardd serves the copy kept in --zone-dir at
// once, the primary unreachable, until the zone with a 4 s expire answers
// SERVFAIL.
func TestSecondaryFromKnot(t *testing.T) {
	f := followKnot(t)
	k, d, url, ours, port, zoneDir := f.k, f.d, f.url, f.ours, f.port, f.zoneDir
	waitAnswer(t, ours, "NOERROR", "192.0.2.81", "www.expire.test", "A")
	secondarySameAsKnot(t, k.addr, ours)
	m := testkit.Scrape(t, url)
	if n := testkit.MetricSum(m, "shardd_dns_transfers_total", `result="ok",type="axfr",zone="notify.test."`); n != 1 {
		t.Errorf("AXFRs of notify.test: %v, want 1\n%s", n, m)
	}

	start := time.Now()
	k.bump(t, 2026113002)
	waitAnswer(t, ours, "NOERROR", "version 2026113002", "txt.notify.test", "TXT")
	t.Logf("the change reached shardd %v after the reload began", time.Since(start).Round(time.Millisecond))
	secondarySameAsKnot(t, k.addr, ours)
	m = testkit.Scrape(t, url)
	if n := testkit.MetricSum(m, "shardd_dns_transfers_total", `result="ok",type="ixfr",zone="notify.test."`); n != 1 {
		t.Errorf("IXFRs of notify.test: %v, want 1\n%s", n, m)
	}
	if n := testkit.MetricSum(m, "shardd_dns_notifies_total", `result="accepted",zone="notify.test."`); n < 1 {
		t.Errorf("no NOTIFY accepted for notify.test\n%s", m)
	}
	if !regexp.MustCompile(`"msg":"zone transferred".*"zone":"notify.test.","type":"ixfr".*"serial_from":2026113001.*"serial":2026113002`).MatchString(d.Stderr.String()) {
		t.Errorf("no log line of the IXFR from 2026113001 to 2026113002:\n%s", d.Stderr)
	}
	if fi, err := os.Stat(filepath.Join(zoneDir, "notify.test.zone")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("copy of notify.test: %v %v, want mode 0640", fi, err)
	}

	d.Stop(t, syscall.SIGTERM)
	k.proc.Stop(t, syscall.SIGTERM)
	// Restarted with the primary gone: the copies serve at once.
	_, url2 := secondaryDaemon(t, k, port, k.keyFile, zoneDir)
	r := digAnswer(t, ours, "txt.notify.test", "TXT")
	if r.status != "NOERROR" || !strings.Contains(strings.Join(r.answer, " "), "version 2026113002") {
		t.Fatalf("restarted from --zone-dir without a primary: want the copy's answer, got\n%s", r.out)
	}
	waitAnswer(t, ours, "SERVFAIL", "", "www.expire.test", "A")
	// As Knot DNS 3.2 answers from an expired zone: no AA, EDE 24.
	if r := digAnswer(t, ours, "www.expire.test", "A"); r.flags["aa"] || !strings.Contains(r.out, "EDE: 24 (Invalid Data)") {
		t.Errorf("expired zone: want SERVFAIL without AA, with EDE 24, as Knot answers:\n%s", r.out)
	}
	if n := testkit.MetricSum(testkit.Scrape(t, url2), "shardd_dns_zone_expired", `zone="expire.test."`); n != 1 {
		t.Errorf("shardd_dns_zone_expired{zone=expire.test.} = %v, want 1", n)
	}
	if r := digAnswer(t, ours, "txt.notify.test", "TXT"); r.status != "NOERROR" {
		t.Errorf("notify.test (expire 14 days) stopped answering:\n%s", r.out)
	}
}

// TestSecondaryWrongKey: with a key the primary does not know, refreshes
// are refused, the failure is logged once however often it is retried,
// and the copy from --zone-dir keeps serving.
func TestSecondaryWrongKey(t *testing.T) {
	f := followKnot(t)
	k, ours, port, zoneDir := f.k, f.ours, f.port, f.zoneDir
	f.d.Stop(t, syscall.SIGTERM)

	// The same name, another secret, in BIND's form (as tsig-keygen writes).
	wrong := filepath.Join(t.TempDir(), "wrong.key")
	if err := os.WriteFile(wrong, []byte("key \"xfr\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2hhcmRkIHdyb25nIGtleSBzaGFyZGQgd3Jvbmcga2V5\";\n};\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k.bump(t, 2026113002)
	d2, url := secondaryDaemon(t, k, port, wrong, zoneDir)
	testkit.PollFor(t, "three failed refreshes of expire.test (retry 1 s)", testkit.WaitTimeout, func() bool {
		return testkit.MetricSum(testkit.Scrape(t, url), "shardd_dns_zone_refresh_failures_total", `zone="expire.test."`) >= 3
	})
	r := digAnswer(t, ours, "txt.notify.test", "TXT")
	if r.status != "NOERROR" || !strings.Contains(strings.Join(r.answer, " "), "version 2026113001") {
		t.Errorf("with a refused key the old copy must serve, got\n%s", r.out)
	}
	log := d2.Stderr.String()
	if n := strings.Count(log, `"secondary zone refresh failed; the copy being served (if any) stays","zone":"expire.test."`); n != 1 {
		t.Errorf("refresh failures of expire.test logged %d times, want once:\n%s", n, log)
	}
	if !strings.Contains(log, "NOTAUTH, TSIG error BADSIG") {
		t.Errorf("the failure does not say the key was refused:\n%s", log)
	}
	if strings.Contains(log, "c2hhcmRkIHdyb25n") || strings.Contains(log, k.secret) {
		t.Errorf("a secret is in the log:\n%s", log)
	}
}

// TestSecondaryCatchesUpByIXFR: a shardd restarted two versions behind
// starts from its copy and catches up with one IXFR over both changes
// (Knot's journal holds one per reload), not an AXFR, and answers as Knot
// does.
func TestSecondaryCatchesUpByIXFR(t *testing.T) {
	f := followKnot(t)
	f.d.Stop(t, syscall.SIGTERM)
	f.k.bump(t, 2026113002)
	f.k.bump(t, 2026113003)
	d, url := secondaryDaemon(t, f.k, f.port, f.k.keyFile, f.zoneDir)
	waitAnswer(t, f.ours, "NOERROR", "version 2026113003", "txt.notify.test", "TXT")
	secondarySameAsKnot(t, f.k.addr, f.ours)
	m := testkit.Scrape(t, url)
	ixfr := testkit.MetricSum(m, "shardd_dns_transfers_total", `result="ok",type="ixfr",zone="notify.test."`)
	axfr := testkit.MetricSum(m, "shardd_dns_transfers_total", `type="axfr",zone="notify.test."`)
	if ixfr != 1 || axfr != 0 {
		t.Errorf("catching up: %v IXFRs, %v AXFRs; want one IXFR\n%s", ixfr, axfr, d.Stderr)
	}
	if !regexp.MustCompile(`"msg":"zone transferred".*"zone":"notify.test.","type":"ixfr".*"serial_from":2026113001.*"serial":2026113003`).MatchString(d.Stderr.String()) {
		t.Errorf("no log line of the IXFR from 2026113001 to 2026113003:\n%s", d.Stderr)
	}
}
