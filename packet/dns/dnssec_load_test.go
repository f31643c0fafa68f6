package dns

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

// TestLoadSignedZones loads the signed example zones: every chain is
// complete, and the RRSIGs are filed by the type they cover.
func TestLoadSignedZones(t *testing.T) {
	for _, c := range []struct {
		zone  string
		kind  denial
		links int
	}{
		{"example.com", denyNSEC, 21}, {"edge.test", denyNSEC3, 33}, {"child.edge.test", denyNSEC3, 3}, {"2.0.192.in-addr.arpa", denyNSEC3, 3},
	} {
		z, err := LoadZone("../../testdata/dns/signed/" + c.zone + ".zone")
		if err != nil {
			t.Fatal(err)
		}
		if z.chain == nil || z.chain.kind != c.kind || len(z.chain.links) != c.links || !z.signed {
			t.Errorf("%s: chain %+v, want kind %d with %d links", c.zone, z.chain, c.kind, c.links)
		}
		if apex := z.nodes[z.Origin]; len(apex.sigs[mdns.TypeSOA]) != 1 || len(apex.sigs[mdns.TypeDNSKEY]) != 2 { // ZSK and KSK
			t.Errorf("%s: apex RRSIGs by type: %v", c.zone, apex.sigs)
		}
	}
}

// signedRecords reads a signed example zone.
func signedRecords(t *testing.T, zone string) []mdns.RR {
	f, err := os.Open("../../testdata/dns/signed/" + zone + ".zone")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rrs []mdns.RR
	zp := mdns.NewZoneParser(f, "", zone)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if zp.Err() != nil {
		t.Fatal(zp.Err())
	}
	return rrs
}

// zoneText writes rrs one a line, but for those edit drops (edit may also
// change a record); it fails if edit changed nothing.
func zoneText(t *testing.T, rrs []mdns.RR, edit func(mdns.RR) (drop, changed bool)) string {
	var b strings.Builder
	n := 0
	for _, rr := range rrs {
		rr = mdns.Copy(rr)
		drop, changed := edit(rr)
		if drop || changed {
			n++
		}
		if !drop {
			b.WriteString(rr.String() + "\n")
		}
	}
	if n == 0 {
		t.Fatal("the edit changes no record")
	}
	return b.String()
}

// TestLoadRejectsBrokenSignedZones breaks the signed zones in ways
// ldns-verify-zone rejects (and checks that it does, when installed): a
// name without its NSEC, an NSEC chain that skips names, an NSEC3 chain
// missing a record. Each gets a one-line error naming it. Without
// NSEC3PARAM (ldns-verify-zone accepts it) the zone loads, its chain hashed
// with its NSEC3 records' parameters.
func TestLoadRejectsBrokenSignedZones(t *testing.T) {
	ldns, err := exec.LookPath("ldns-verify-zone")
	if err != nil && os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
		t.Fatal("ldns-verify-zone not installed (apt-get install ldnsutils)")
	}
	nsec, nsec3 := signedRecords(t, "example.com"), signedRecords(t, "edge.test")
	drop := func(name string, rtype uint16) func(mdns.RR) (bool, bool) {
		return func(rr mdns.RR) (bool, bool) {
			return strings.EqualFold(rr.Header().Name, name) && rr.Header().Rrtype == rtype, false
		}
	}
	skip := func(rr mdns.RR) (bool, bool) { // huge's NSEC skips the names up to mail
		if n, ok := rr.(*mdns.NSEC); ok && n.Hdr.Name == "huge.example.com." {
			n.NextDomain = "mail.example.com."
			return false, true
		}
		return false, false
	}
	for _, c := range []struct {
		name, text, want string
	}{
		{"name without NSEC", zoneText(t, nsec, drop("ftp.example.com.", mdns.TypeNSEC)), "ftp.example.com. has no NSEC record"},
		{"NSEC next name wrong", zoneText(t, nsec, skip), "huge.example.com. NSEC: the next owner is not"},
		{"NSEC3 record missing", zoneText(t, nsec3, drop("027971v1fms2kd87crkfkdm210sr77f6.edge.test.", mdns.TypeNSEC3)), "chain broken"},
	} {
		_, err := ParseZone(strings.NewReader(c.text), c.name)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line with %q", c.name, err, c.want)
		}
		if ldns == "" {
			continue
		}
		f := filepath.Join(t.TempDir(), "zone")
		if err := os.WriteFile(f, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(ldns, f).CombinedOutput(); err == nil {
			t.Errorf("%s: ldns-verify-zone accepts it, so shardd must too:\n%s", c.name, out)
		}
	}
	// The unbroken text loads (the edits above are what breaks it), and so
	// does the zone without NSEC3PARAM.
	if _, err := ParseZone(strings.NewReader(zoneText(t, nsec3, func(rr mdns.RR) (bool, bool) { return false, true })), "edge.test"); err != nil {
		t.Fatal(err)
	}
	z, err := ParseZone(strings.NewReader(zoneText(t, nsec3, drop("edge.test.", mdns.TypeNSEC3PARAM))), "edge.test")
	if err != nil || z.chain == nil || z.chain.kind != denyNSEC3 || len(z.chain.links) != 33 {
		t.Fatalf("edge.test without NSEC3PARAM: %v", err)
	}
}

// TestLoadLdnsSignedZone signs example.com with ldns-signzone (NSEC, and
// NSEC3 with opt-out and a salt) and loads what it writes: another signer's
// output, not only dnssec-signzone's, and an NXDOMAIN with DO carries the
// proofs.
func TestLoadLdnsSignedZone(t *testing.T) {
	var tools []string
	for _, name := range []string{"ldns-keygen", "ldns-signzone"} {
		p, err := exec.LookPath(name)
		if err != nil {
			if os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
				t.Fatalf("%s not installed (apt-get install ldnsutils)", name)
			}
			t.Skipf("%s not installed", name)
		}
		tools = append(tools, p)
	}
	dir := t.TempDir()
	run := func(argv ...string) string {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	ksk := run(tools[0], "-a", "ECDSAP256SHA256", "-k", "example.com")
	zsk := run(tools[0], "-a", "ECDSAP256SHA256", "example.com")
	text, err := os.ReadFile("../../testdata/dns/example.com.zone")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "example.com.zone"), text, 0o644); err != nil {
		t.Fatal(err)
	}
	run(tools[1], "-f", "nsec.zone", "example.com.zone", ksk, zsk)
	run(tools[1], "-n", "-p", "-s", "c0ffee", "-f", "nsec3.zone", "example.com.zone", ksk, zsk)
	for _, c := range []struct {
		file string
		kind denial
		nx   string // the type of the first proof in an NXDOMAIN
	}{{"nsec.zone", denyNSEC, "NSEC"}, {"nsec3.zone", denyNSEC3, "NSEC3"}} {
		s, err := NewServer([]string{filepath.Join(dir, c.file)})
		if err != nil {
			t.Fatal(err)
		}
		z := s.Zones().List[0]
		if z.chain == nil || z.chain.kind != c.kind {
			t.Fatalf("%s: chain %+v, want kind %d", c.file, z.chain, c.kind)
		}
		q := newQuery("nope.example.com.", mdns.TypeA)
		q.SetEdns0(1232, true)
		raw, _ := q.Pack()
		m := new(mdns.Msg)
		if err := m.Unpack(exchange(t, s.NewHandler(0), raw, packet.UDP)); err != nil {
			t.Fatal(err)
		}
		if m.Rcode != mdns.RcodeNameError || len(m.Ns) < 4 || mdns.TypeToString[m.Ns[1].Header().Rrtype] != c.nx {
			t.Errorf("%s: NXDOMAIN with DO: rcode %d, authority %v", c.file, m.Rcode, m.Ns)
		}
	}
}

// TestSignedZoneLongNames: in a zone signed with NSEC, a wildcard whose
// name is 255 bytes long and a name whose "*" child would be longer still
// load and answer (their templates are packed for names of the same
// length). The RRSIGs are not checked at load, so made-up ones do here.
func TestSignedZoneLongNames(t *testing.T) {
	l63 := strings.Repeat("a", 63)
	long := l63 + "." + l63 + "." + l63 + "." + strings.Repeat("b", 53) + ".l.test."        // 254 bytes
	wild := "*." + l63 + "." + l63 + "." + l63 + "." + strings.Repeat("c", 52) + ".l.test." // 255 bytes
	sig := func(owner, covered string) string {
		return owner + " 60 RRSIG " + covered + " 13 2 60 20380101000000 20250101000000 1 l.test. AAAA\n"
	}
	var text strings.Builder
	text.WriteString("$ORIGIN l.test.\n@ 60 SOA ns hm 1 2 3 4 5\n@ 60 NS ns\n" + sig("@", "SOA") + sig("@", "NS"))
	names := []string{"l.test.", long, wild[2:], wild, "ns.l.test."}
	types := []string{"NS SOA RRSIG NSEC", "A RRSIG NSEC", "", "A RRSIG NSEC", "A RRSIG NSEC"}
	// In canonical order: l.test., then the labels below it: aaa... (long's
	// parent chain) < ccc... (the wildcard's) < ns.
	order := []int{0, 1, 3, 4}
	for i, k := range order {
		next := names[order[(i+1)%len(order)]]
		text.WriteString(names[k] + " 60 NSEC " + next + " " + types[k] + "\n" + sig(names[k], "NSEC"))
		if k != 0 {
			text.WriteString(names[k] + " 60 A 192.0.2.1\n" + sig(names[k], "A"))
		}
	}
	f := filepath.Join(t.TempDir(), "l.test.zone")
	if err := os.WriteFile(f, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newServerOf(t, []string{f})
	m, _, _ := askDO(t, s.NewHandler(0), "x"+wild[1:], mdns.TypeA, 1232)
	if m.Rcode != mdns.RcodeSuccess || len(m.Answer) != 2 || len(m.Ns) != 2 {
		t.Errorf("synthesized from the 255-byte wildcard: %v", m)
	}
}
