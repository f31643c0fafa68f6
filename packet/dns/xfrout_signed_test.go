package dns

import (
	"testing"

	mdns "github.com/miekg/dns"
)

// TestTransferOutKeepsNSEC3: the walk that AXFR out and the IXFR journal
// use gives every record of an NSEC3-signed zone but its SOA, the NSEC3
// records (kept apart from the names) included: a secondary of this
// server would otherwise lose the zone's proofs.
func TestTransferOutKeepsNSEC3(t *testing.T) {
	_, _, zone := signedSecondary(t, "")
	n, nsec3 := 0, 0
	_ = zone.eachRR(func(rr mdns.RR) error {
		n++
		if isNSEC3Record(rr) {
			nsec3++
		}
		return nil
	})
	if nsec3 == 0 || n != zone.Count-1 {
		t.Fatalf("walked %d records (%d of the NSEC3 chain); want %d, the zone's but its SOA", n, nsec3, zone.Count-1)
	}
}
