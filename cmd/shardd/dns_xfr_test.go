//go:build linux

package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// xfrZoneText is the zone the transfer tests serve, at a serial; its SOA
// refresh (3600 s) is far longer than any test, so a secondary that has
// the new serial within the test got it through NOTIFY.
func xfrZoneText(serial int, a string) string {
	return "$ORIGIN xfr.test.\n$TTL 300\n@ SOA ns1 hostmaster " + strconv.Itoa(serial) + " 3600 600 86400 300\n" +
		"@ NS ns1\nns1 A 192.0.2.53\nwww A " + a + "\nmail MX 10 ns1\ntxt TXT \"version " + strconv.Itoa(serial) + "\"\n" +
		"sub NS ns.sub\nns.sub A 192.0.2.54\n*.wild TXT \"wild\"\n"
}

// knotSecondary runs Knot DNS on port as a secondary for xfr.test.,
// transferring from the primary at primaryPort and taking NOTIFY from
// 127.0.0.1; with key (name:secret) both are TSIG-signed. The test ends it
// by PID.
func knotSecondary(t *testing.T, port, primaryPort int, key string) *testkit.LockedBuffer {
	t.Helper()
	return knotSecondaryOf(t, "xfr.test", port, primaryPort, key)
}

// knotSecondaryOf is knotSecondary for zone.
func knotSecondaryOf(t *testing.T, zone string, port, primaryPort int, key string) *testkit.LockedBuffer {
	t.Helper()
	knotd := requireTool(t, "knotd")
	dir := t.TempDir()
	keyConf, keyRef := "", ""
	if key != "" {
		name, secret, _ := strings.Cut(key, ":")
		keyConf = fmt.Sprintf("key:\n  - id: %s\n    algorithm: hmac-sha256\n    secret: %s\n", name, secret)
		keyRef = "    key: " + name + "\n"
	}
	conf := fmt.Sprintf("server:\n  listen: 127.0.0.1@%d\n  rundir: %s\n  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n"+
		"database:\n  storage: %s\nlog:\n  - target: stderr\n    any: info\n%s"+
		"remote:\n  - id: primary\n    address: 127.0.0.1@%d\n%s"+
		"acl:\n  - id: notify\n    address: 127.0.0.1\n    action: notify\n%s"+
		"zone:\n  - domain: %[8]s\n    master: primary\n    acl: notify\n    file: %[9]s/%[8]s.zone\n    zonefile-sync: -1\n",
		port, dir, dir, keyConf, primaryPort, keyRef, keyRef, zone, dir)
	return runKnotd(t, knotd, dir, conf)
}

// runKnotd writes conf to dir/knot.conf and runs knotd with it, logging
// to the buffer returned. The test ends it by PID.
func runKnotd(t *testing.T, knotd, dir, conf string) *testkit.LockedBuffer {
	t.Helper()
	cf := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(knotd, "-c", cf)
	var logBuf testkit.LockedBuffer
	cmd.Stderr = &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // the knotd this test started
		_ = cmd.Wait()
	})
	return &logBuf
}

// soaSerial asks addr for xfr.test.'s SOA serial ("" if it has none).
func soaSerial(t *testing.T, addr netip.AddrPort) string {
	if f := strings.Fields(digShort(t, addr, "xfr.test", "SOA")); len(f) == 7 {
		return f[2]
	}
	return ""
}

// waitSerial polls addr until it serves serial.
func waitSerial(t *testing.T, addr netip.AddrPort, serial string, logs fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(testkit.WaitTimeout)
	for soaSerial(t, addr) != serial {
		if time.Now().After(deadline) {
			t.Fatalf("%v never served serial %s of xfr.test.; log:\n%s", addr, serial, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// xfrQuestions are asked of the primary and the secondary alike.
var xfrQuestions = [][]string{
	{"xfr.test", "SOA"}, {"xfr.test", "NS"}, {"www.xfr.test", "A"}, {"mail.xfr.test", "MX"}, {"txt.xfr.test", "TXT"},
	{"x.sub.xfr.test", "A"}, {"a.wild.xfr.test", "TXT"}, {"nope.xfr.test", "A"}, {"www.xfr.test", "AAAA"},
}

var digVolatile = regexp.MustCompile(`(?m)(id: \d+|^;; (Query time|SERVER|WHEN|MSG SIZE).*$|; COOKIE: .*$)`)

// sameAnswers asks both servers xfrQuestions and fails on any difference.
func sameAnswers(t *testing.T, a, b netip.AddrPort) {
	t.Helper()
	for _, q := range xfrQuestions {
		args := append([]string{"+nocmd"}, q...)
		x := digVolatile.ReplaceAllString(dig(t, "dig", a, args...).out, "")
		y := digVolatile.ReplaceAllString(dig(t, "dig", b, args...).out, "")
		if x != y {
			t.Errorf("dig %v: primary and secondary differ\n--- shardd\n%s\n--- knot\n%s", q, x, y)
		}
	}
}

// xfrPrimary starts shardd as the primary of xfr.test. (serial 1) on a
// free port, UDP on the shards and TCP on --xfr-listen, with
// --allow-transfer allow and, unless notifyPort is 0, --notify to it, and
// the extra flags. It returns the daemon, the zone file, the address and
// the metrics URL.
func xfrPrimary(t *testing.T, allow string, notifyPort int, extra ...string) (*daemon, string, netip.AddrPort, string) {
	t.Helper()
	zone := filepath.Join(t.TempDir(), "xfr.test.zone")
	if err := os.WriteFile(zone, []byte(xfrZoneText(1, "192.0.2.10")), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort("127.0.0.1:" + strconv.Itoa(testkit.FreePort(t)))
	args := []string{"--handler", "dns", "--proto", "udp", "--shards", "2", "--metrics", "127.0.0.1:0", "--zone", zone,
		"--xfr-listen", addr.String(), "--allow-transfer", allow}
	if notifyPort != 0 {
		args = append(args, "--notify", "127.0.0.1:"+strconv.Itoa(notifyPort))
	}
	args = append(args, extra...)
	d := startDaemon(t, append(args, addr.String())...)
	d.WaitLine(t, "serving zone transfers")
	url := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	return d, zone, addr, url
}

// TestKnotSecondaryOfShardd: shardd is the primary (--xfr-listen on the
// UDP port's number), Knot DNS a secondary: Knot transfers the zone by
// AXFR and answers as shardd does; after a HUP with a new serial, shardd's
// NOTIFY makes Knot take the change by IXFR within seconds (the SOA
// refresh is an hour), and the answers agree again.
func TestKnotSecondaryOfShardd(t *testing.T) {
	requireTool(t, "knotd")
	knotPort := testkit.FreePort(t)
	d, zone, addr, url := xfrPrimary(t, "127.0.0.1", knotPort)
	knotLog := knotSecondary(t, knotPort, int(addr.Port()), "")
	knot := netip.MustParseAddrPort("127.0.0.1:" + strconv.Itoa(knotPort))
	waitSerial(t, knot, "1", knotLog)
	if !strings.Contains(knotLog.String(), "AXFR, incoming") {
		t.Errorf("Knot did not log an incoming AXFR:\n%s", knotLog)
	}
	sameAnswers(t, addr, knot)

	if err := os.WriteFile(zone, []byte(xfrZoneText(2, "192.0.2.20")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The NOTIFY round runs beside the reload and may end before the
	// reload's own line is written: wait for both, in either order.
	lines := d.WaitLines(t, "zone reloaded", "NOTIFY round ended")
	if l := lines["zone reloaded"]; l["serial"].(float64) != 2 || l["source"] != "file" {
		t.Fatalf("reload line: %v", l)
	}
	if l := lines["NOTIFY round ended"]; fmt.Sprint(l["acked"]) != "[127.0.0.1:"+strconv.Itoa(knotPort)+"]" {
		t.Errorf("NOTIFY round: %v", l)
	}
	waitSerial(t, knot, "2", knotLog)
	t.Logf("Knot served serial 2 %v after the HUP", time.Since(start).Round(time.Millisecond))
	testkit.PollFor(t, "Knot's log of the IXFR", testkit.WaitTimeout, func() bool {
		return strings.Contains(knotLog.String(), "IXFR, incoming") && strings.Contains(knotLog.String(), "serial 1 -> 2")
	})
	sameAnswers(t, addr, knot)
	waitMetric(t, url, "shardd_dns_transfers_total", `result="sent",type="axfr",zone="xfr.test."`, 1)
	waitMetric(t, url, "shardd_dns_transfers_total", `result="sent",type="ixfr",zone="xfr.test."`, 1)
	waitMetric(t, url, "shardd_dns_zone_info", `source="file",zone="xfr.test."`, 1)
}

// TestXFRRefusedByACL: with --allow-transfer 127.0.0.2, dig's AXFR from
// 127.0.0.1 is REFUSED and from 127.0.0.2 gets the zone; a TSIG key shardd
// does not have (dig -y) gets NOTAUTH, and with no --allow-transfer at
// all every transfer is REFUSED, on the transfer port and on the shards.
func TestXFRRefusedByACL(t *testing.T) {
	d, _, addr, url := xfrPrimary(t, "127.0.0.2", 0)
	port := int(addr.Port())
	axfr := func(args ...string) string {
		out, _ := exec.Command(requireTool(t, "dig"), append([]string{"@127.0.0.1", "-p", strconv.Itoa(port), "+time=10", "+tries=1"}, args...)...).CombinedOutput()
		return string(out)
	}
	if out := axfr("-b", "127.0.0.1", "xfr.test", "AXFR"); !strings.Contains(out, "Transfer failed") || strings.Contains(out, "192.0.2.10") {
		t.Errorf("AXFR from 127.0.0.1 (not allowed):\n%s", out)
	}
	if out := axfr("-b", "127.0.0.2", "xfr.test", "AXFR"); !strings.Contains(out, "XFR size: 10 records") || !strings.Contains(out, "192.0.2.10") {
		t.Errorf("AXFR from 127.0.0.2 (allowed):\n%s", out)
	}
	if out := axfr("-b", "127.0.0.2", "-y", "hmac-sha256:wrong.key:"+strings.Repeat("A", 43)+"=", "xfr.test", "AXFR"); strings.Contains(out, "192.0.2.10") {
		t.Errorf("AXFR with a key shardd does not have got the zone:\n%s", out)
	}
	// kdig prints the rcode of a refused transfer, and the TSIG error.
	out, _ := exec.Command(requireTool(t, "kdig"), "@127.0.0.1", "-p", strconv.Itoa(port), "+time=10", "+retry=0", "xfr.test", "AXFR").CombinedOutput()
	if !strings.Contains(string(out), "REFUSED") {
		t.Errorf("kdig AXFR from 127.0.0.1: want REFUSED\n%s", out)
	}
	out, _ = exec.Command(requireTool(t, "kdig"), "@127.0.0.1", "-p", strconv.Itoa(port), "+time=10", "+retry=0", "-b", "127.0.0.2",
		"-y", "hmac-sha256:wrong.key:"+strings.Repeat("A", 43)+"=", "xfr.test", "AXFR").CombinedOutput()
	if !strings.Contains(string(out), "BADKEY") {
		t.Errorf("kdig AXFR with an unknown key: want BADKEY\n%s", out)
	}
	waitMetric(t, url, "shardd_dns_transfers_total", `result="refused",type="axfr",zone="xfr.test."`, 2)
	waitMetric(t, url, "shardd_dns_transfers_total", `result="badkey",type="axfr",zone="xfr.test."`, 2)
	waitMetric(t, url, "shardd_dns_transfers_total", `result="sent",type="axfr",zone="xfr.test."`, 1)
	if l := d.WaitLine(t, "zone transfer refused: source and key not in --allow-transfer"); l["client"] == nil {
		t.Errorf("refusal line: %v", l)
	}
}

// TestZoneReloadPerZoneOnHUP: with two zones in a --zone directory, a HUP
// where one file is broken keeps that zone's old version serving, gives
// the other its new one, logs which file failed (and the version kept) and
// shows each zone's serial and source in /metrics.
func TestZoneReloadPerZoneOnHUP(t *testing.T) {
	dir := t.TempDir()
	write := func(name, origin string, serial int, a string) {
		text := strings.ReplaceAll(xfrZoneText(serial, a), "xfr.test.", origin)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good.zone", "good.test.", 1, "192.0.2.1")
	write("bad.zone", "bad.test.", 1, "192.0.2.1")
	d, addr, url := dnsDaemon(t, "--zone", dir)
	write("good.zone", "good.test.", 2, "192.0.2.2")
	write("bad.zone", "bad.test.", 2, "192.0.2.300")
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	l := d.WaitLine(t, "zone reload failed; the zone's previous version keeps serving (none if it had none)")
	if l["file"] != filepath.Join(dir, "bad.zone") || l["zone"] != "bad.test." || l["serial"].(float64) != 1 || !strings.Contains(l["error"].(string), "line: 6") {
		t.Errorf("failure line: %v", l)
	}
	for range 2 {
		l := d.WaitLine(t, "zone reloaded")
		want := map[string]float64{"good.test.": 2, "bad.test.": 1}[l["zone"].(string)]
		if l["serial"].(float64) != want || l["source"] != "file" {
			t.Errorf("reload line %v: want serial %v, source file", l, want)
		}
	}
	if r := dig(t, "dig", addr, "www.good.test", "A"); !r.has(r.answer, "192.0.2.2") {
		t.Errorf("the good zone's new version:\n%s", r.out)
	}
	if r := dig(t, "dig", addr, "www.bad.test", "A"); !r.has(r.answer, "192.0.2.1") {
		t.Errorf("the broken zone's old version:\n%s", r.out)
	}
	waitMetric(t, url, "shardd_dns_zone_serial", `zone="good.test."`, 2)
	waitMetric(t, url, "shardd_dns_zone_serial", `zone="bad.test."`, 1)
	waitMetric(t, url, "shardd_dns_zone_info", `source="file",zone="bad.test."`, 1)
	waitMetric(t, url, "shardd_dns_zone_reload_errors_total", "", 1)
}

// nsdSecondary runs NSD on port as a secondary for xfr.test., transferring
// from 127.0.0.1@primaryPort and taking NOTIFY from 127.0.0.1. It returns
// the path of NSD's log. The test ends it by PID.
func nsdSecondary(t *testing.T, port, primaryPort int) string {
	t.Helper()
	nsd := requireTool(t, "nsd")
	dir := t.TempDir()
	logf := filepath.Join(dir, "nsd.log")
	conf := fmt.Sprintf("server:\n  ip-address: 127.0.0.1@%d\n  port: %d\n  zonesdir: %q\n  database: \"\"\n  zonelistfile: %q\n"+
		"  xfrdfile: %q\n  xfrdir: %q\n  pidfile: %q\n  username: \"\"\n  chroot: \"\"\n  logfile: %q\n  verbosity: 2\n  server-count: 1\n"+
		"remote-control:\n  control-enable: no\n"+
		"zone:\n  name: xfr.test\n  zonefile: xfr.test.zone\n  request-xfr: 127.0.0.1@%d NOKEY\n  allow-notify: 127.0.0.1 NOKEY\n",
		port, port, dir, filepath.Join(dir, "zone.list"), filepath.Join(dir, "xfrd.state"), dir, filepath.Join(dir, "nsd.pid"), logf, primaryPort)
	cf := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nsd, "-d", "-c", cf)
	var out testkit.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // the nsd this test started
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return logf
}

// fileText reads a log file ("" if it is not there yet).
type fileText string

func (f fileText) String() string {
	b, _ := os.ReadFile(string(f))
	return string(b)
}

// TestNSDSecondaryOfShardd: NSD as a secondary of shardd: it transfers the
// zone, answers the same records, and takes a HUP's new serial through
// NOTIFY and IXFR.
func TestNSDSecondaryOfShardd(t *testing.T) {
	requireTool(t, "nsd")
	nsdPort := testkit.FreePort(t)
	d, zone, addr, url := xfrPrimary(t, "127.0.0.1", nsdPort)
	logf := fileText(nsdSecondary(t, nsdPort, int(addr.Port())))
	nsd := netip.MustParseAddrPort("127.0.0.1:" + strconv.Itoa(nsdPort))
	waitSerial(t, nsd, "1", logf)
	sameRecords(t, addr, nsd)
	if err := os.WriteFile(zone, []byte(xfrZoneText(2, "192.0.2.20")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitSerial(t, nsd, "2", logf)
	sameRecords(t, addr, nsd)
	waitMetric(t, url, "shardd_dns_transfers_total", `result="sent",type="ixfr",zone="xfr.test."`, 1)
}

// sameRecords compares the answer sections (NSD's authority and
// additional sections follow its own choices).
func sameRecords(t *testing.T, a, b netip.AddrPort) {
	t.Helper()
	for _, q := range xfrQuestions {
		x, y := dig(t, "dig", a, q...), dig(t, "dig", b, q...)
		if x.status != y.status || strings.Join(x.answer, "\n") != strings.Join(y.answer, "\n") {
			t.Errorf("dig %v: shardd and NSD differ\n--- shardd\n%s\n--- nsd\n%s", q, x.out, y.out)
		}
	}
}
