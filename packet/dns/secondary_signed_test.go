package dns

import (
	"net/netip"
	"path/filepath"
	"testing"

	mdns "github.com/miekg/dns"
)

// signedSecondary loads the NSEC3-signed child.edge.test and a server
// that follows it (from a primary never asked), keeping copies in dir.
func signedSecondary(t *testing.T, dir string) (*Server, *secondary, *Zone) {
	t.Helper()
	zone, err := LoadZone("../../testdata/dns/signed/child.edge.test.zone")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := SecondaryConfig{Zones: []Secondary{{Zone: zone.Origin, Primaries: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}}}, Dir: dir}
	if err := s.EnableSecondaries(cfg); err != nil {
		t.Fatal(err)
	}
	return s, s.sec.zones[0], zone
}

// sameChain fails unless z has an NSEC3 chain as long as want's, and as
// many records.
func sameChain(t *testing.T, what string, z, want *Zone) {
	t.Helper()
	if z.chain == nil || z.chain.kind != denyNSEC3 || len(z.chain.links) != len(want.chain.links) || z.Count != want.Count {
		t.Fatalf("%s: chain %+v, %d records; want %d NSEC3 links, %d records (NSEC3 records lost: negative answers would not validate)",
			what, z.chain, z.Count, len(want.chain.links), want.Count)
	}
}

// TestSecondarySignedCopyKeepsNSEC3: the copy of an NSEC3-signed zone
// written to --zone-dir holds its NSEC3 records, so the copy loaded at a
// restart still proves NXDOMAIN and NODATA.
func TestSecondarySignedCopyKeepsNSEC3(t *testing.T) {
	dir := t.TempDir()
	s, z, zone := signedSecondary(t, dir)
	if err := s.writeCopy(z, zone, netip.MustParseAddrPort("127.0.0.1:9")); err != nil {
		t.Fatal(err)
	}
	cp, _, err := readCopy(filepath.Join(dir, "child.edge.test.zone"))
	if err != nil {
		t.Fatal(err)
	}
	sameChain(t, "the copy read back", cp, zone)
}

// TestSecondarySignedIXFRKeepsNSEC3: an IXFR applied to an NSEC3-signed
// copy keeps its NSEC3 records (they live apart from the names).
func TestSecondarySignedIXFRKeepsNSEC3(t *testing.T) {
	_, _, zone := signedSecondary(t, "")
	next := mdns.Copy(zone.soa).(*mdns.SOA)
	next.Serial++
	nz, kind, err := zoneFromIXFR([]mdns.RR{next, zone.soa, next, next}, zone)
	if err != nil || kind != "ixfr" || nz == nil || nz.Serial != next.Serial {
		t.Fatalf("IXFR of the SOA alone: %v, %s, %v", nz, kind, err)
	}
	sameChain(t, "after the IXFR", nz, zone)
}
