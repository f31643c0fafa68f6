//go:build linux

package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// knotZones are the zones (testdata/dns/NAME.zone) both servers get.
var knotZones = []string{"example.com", "2.0.192.in-addr.arpa", "edge.test", "child.edge.test"}

// startKnot runs Knot DNS on a free loopback port serving copies of the
// example zones, and returns its address; conf is added to its
// configuration before the zones (modules). The test ends it by PID.
func startKnot(t *testing.T, conf ...string) netip.AddrPort {
	t.Helper()
	return startKnotZones(t, "../../testdata/dns", conf...)
}

// startKnotZones is startKnot serving the knotZones files of zoneDir.
func startKnotZones(t *testing.T, zoneDir string, conf ...string) netip.AddrPort {
	t.Helper()
	knotd := requireTool(t, "knotd")
	dir := t.TempDir()
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(testkit.FreePort(t)))
	text := fmt.Sprintf("server:\n  listen: 127.0.0.1@%d\n  rundir: %s\n  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n"+
		"database:\n  storage: %s\nlog:\n  - target: stderr\n    any: warning\n%szone:\n", addr.Port(), dir, dir, strings.Join(conf, ""))
	for _, z := range knotZones {
		b, err := os.ReadFile(filepath.Join(zoneDir, z+".zone"))
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, z+".zone")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		text += fmt.Sprintf("  - domain: %s\n    file: %s\n    journal-content: none\n    zonefile-sync: -1\n", z, f)
	}
	logBuf := runKnotd(t, knotd, dir, text)
	// Ready when it answers the SOA.
	waitDigShort(t, addr, "example.com", "SOA", "2026112501", logBuf)
	return addr
}

// TestSameAnswersAsKnot asks Knot DNS and shardd the same questions with
// dig, over UDP and TCP, and compares everything dig prints but the IDs,
// timings and server lines: a client cannot tell them apart.
func TestSameAnswersAsKnot(t *testing.T) {
	knot := startKnot(t)
	var zones []string
	for _, z := range knotZones {
		zones = append(zones, "--zone", "../../testdata/dns/"+z+".zone")
	}
	_, ours, _ := dnsDaemon(t, zones...)
	questions := [][]string{
		{"example.com", "SOA"}, {"example.com", "HINFO"}, {"example.com", "NS"}, {"example.com", "A"}, {"example.com", "AAAA"},
		{"example.com", "MX"}, {"example.com", "TXT"}, {"example.com", "CAA"}, {"example.com", "ANY"},
		{"_sip._udp.example.com", "SRV"}, {"-x", "192.0.2.1"}, {"-x", "192.0.2.9"}, {"quoted.example.com", "TXT"},
		{"www.example.com", "A"}, {"www.example.com", "CNAME"}, {"www.example.com", "MX"}, {"www.example.com", "ANY"},
		{"outside.example.com", "A"}, {"loop1.example.com", "A"},
		{"a.apps.example.com", "A"}, {"a.b.apps.example.com", "TXT"}, {"a.apps.example.com", "MX"}, {"host.apps.example.com", "TXT"},
		{"*.apps.example.com", "A"}, {"q.alias.example.com", "AAAA"},
		{"sub.example.com", "A"}, {"sub.example.com", "NS"}, {"sub.example.com", "DS"}, {"x.sub.example.com", "A"}, {"ns1.sub.example.com", "A"},
		{"nope.example.com", "A"}, {"b.example.com", "A"}, {"x.b.example.com", "A"}, {"ftp.example.com", "AAAA"},
		{"example.org", "A"}, {"WwW.ExAmPlE.CoM", "A"}, {"big.example.com", "TXT"},
		{"+bufsize=4096", "huge.example.com", "TXT"}, {"+noedns", "big.example.com", "TXT"},
		// edge.test: escapes, CNAME to wildcards, compression, DS, partial additional.
		{`a\.b.edge.test`, "A"}, {`bin\000x.edge.test`, "A"}, {"abc.edge.test", "A"}, {"ABC.edge.test", "A"},
		{strings.Repeat(`\000`, 40) + ".edge.test", "A"},
		{"alias.edge.test", "A"}, {"alias.edge.test", "TXT"}, {"deep.edge.test", "A"},
		{"+bufsize=1232", "x.big.edge.test", "A"}, {"+bufsize=1232", "big.edge.test", "A"}, {"+bufsize=1232", "x.y.big.edge.test", "AAAA"},
		{"child.edge.test", "DS"}, {"child.edge.test", "SOA"}, {"www.child.edge.test", "A"}, {"todeleg.edge.test", "DS"},
		{"+noedns", "mxs.edge.test", "MX"}, {"edge.test", "ANY"}, {"nx.edge.test", "A"}, {"nx.apps.edge.test", "MX"},
	}
	for _, transport := range []string{"+notcp", "+tcp"} {
		for _, q := range questions {
			sameAsKnot(t, knot, ours, append([]string{transport, "+nocmd"}, q...)...)
		}
	}
}

// volatile is what dig prints that differs from reply to reply.
var volatile = regexp.MustCompile(`(?m)(id: \d+|^;; (Query time|SERVER|WHEN).*$|; COOKIE: .*$)`)

// volatileSize is volatile and the reply's size.
var volatileSize = regexp.MustCompile(`(?m)(id: \d+|^;; (Query time|SERVER|WHEN|MSG SIZE).*$|; COOKIE: .*$)`)

// sameAsKnot asks Knot and shardd the same question with dig and fails if
// what it prints differs but for IDs, timings and server lines: the
// reply's size too (names are compressed as Knot compresses them, so
// replies truncate at the same sizes). Knot adds an
// Extended DNS Error to REFUSED (so does shardd) and to nothing else here;
// the whole text is compared. One size differs: a question for an NSEC3
// owner name (qtype NSEC3), whose proof repeats that name: Knot compresses
// it against the question, shardd's answer, packed for any name that does
// not exist, writes it out (33 bytes more).
func sameAsKnot(t *testing.T, knot, ours netip.AddrPort, args ...string) {
	t.Helper()
	re := volatile
	if slices.Contains(args, "NSEC3") {
		re = volatileSize
	}
	a := re.ReplaceAllString(dig(t, "dig", knot, args...).out, "")
	b := re.ReplaceAllString(dig(t, "dig", ours, args...).out, "")
	if !strings.Contains(b, "status: ") {
		t.Fatalf("dig %v printed no reply:\n%s", args, b)
	}
	if a != b {
		t.Errorf("dig %v: Knot and shardd differ\n--- knot\n%s\n--- shardd\n%s", args, a, b)
	}
}
