//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// knotSign signs testdata/dns/ZONE.zone with Knot DNS's offline signer,
// kzonesign (ECDSA P-256 keys it makes in a KASP database of its own,
// NSEC3 without salt), writes the signed file to dir/ZONE.zone and returns
// delv trust anchors (the zone's KSK) in dir/ZONE.anchors.
func knotSign(t *testing.T, zone, dir string) string {
	t.Helper()
	kzonesign := requireTool(t, "kzonesign")
	work := t.TempDir()
	src, err := os.ReadFile(filepath.Join("../../testdata/dns", zone+".zone"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(work, zone+".zone")
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("server:\n  rundir: %[1]s\ndatabase:\n  storage: %[1]s\n  kasp-db: %[1]s/kasp\n"+
		"policy:\n  - id: p\n    algorithm: ecdsap256sha256\n    nsec3: on\n    nsec3-iterations: 0\n    nsec3-salt-length: 0\n"+
		"zone:\n  - domain: %[2]s\n    file: %[3]s\n    dnssec-signing: on\n    dnssec-policy: p\n", work, zone, file)
	cf := filepath.Join(work, "knot.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(kzonesign, "-c", cf, "-o", dir, zone).CombinedOutput(); err != nil {
		t.Fatalf("kzonesign %s: %v\n%s", zone, err, out)
	}
	f, err := os.Open(filepath.Join(dir, zone+".zone"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	anchors := "trust-anchors {\n"
	zp := mdns.NewZoneParser(f, zone+".", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if k, isKey := rr.(*mdns.DNSKEY); isKey && k.Flags == 257 {
			anchors += fmt.Sprintf("\t%s static-key %d %d %d %q;\n", k.Hdr.Name, k.Flags, k.Protocol, k.Algorithm, k.PublicKey)
		}
	}
	if err := zp.Err(); err != nil || !strings.Contains(anchors, "static-key") {
		t.Fatalf("%s signed by kzonesign: %v, no KSK", zone, err)
	}
	path := filepath.Join(dir, zone+".anchors")
	if err := os.WriteFile(path, []byte(anchors+"};\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKnotSignedZone loads example.com as Knot DNS's signer (kzonesign)
// signs it, with NSEC3 and the CDS and CDNSKEY records Knot adds for the
// parent, and checks shardd's answers: every example.com question of the
// signed-zone tests, with and without DO, over UDP and TCP, as Knot DNS
// serving the same file gives them, and delv validates them with the
// zone's KSK as trust anchor.
func TestKnotSignedZone(t *testing.T) {
	delv := requireTool(t, "delv")
	dir := t.TempDir()
	anchors := knotSign(t, "example.com", dir)
	for _, z := range knotZones[1:] { // the other zones as dnssec-signzone signed them
		b, err := os.ReadFile(filepath.Join(signedDir, z+".zone"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, z+".zone"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	knot := startKnotZones(t, dir)
	var zones []string
	for _, z := range knotZones {
		zones = append(zones, "--zone", filepath.Join(dir, z+".zone"))
	}
	_, ours, _ := dnsDaemon(t, zones...)
	var questions [][]string
	for _, q := range append(signedQuestions, truncatedQuestions...) {
		if strings.Contains(strings.Join(q, " "), "example.com") {
			questions = append(questions, q)
		}
	}
	for _, do := range []string{"+dnssec", "+nodnssec"} {
		for _, transport := range []string{"+notcp", "+tcp"} {
			for _, q := range questions {
				sameAsKnot(t, knot, ours, append([]string{do, transport, "+nocmd", "+multiline"}, q...)...)
			}
		}
		for _, q := range questions {
			sameAsKnot(t, knot, ours, append([]string{do, "+notcp", "+ignore", "+bufsize=512", "+nocmd", "+multiline"}, q...)...)
		}
	}
	var cases []delvCase
	for _, c := range signedVerdicts {
		if c.root == "example.com" {
			cases = append(cases, c)
		}
	}
	checkVerdicts(t, delv, knot, ours, anchors, cases)
}
