package dns

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAttackBigRRsetLoad: a zone (from a file or a hostile primary) with
// 80,000 records in one RRset, each given twice, loads in seconds with
// the duplicates dropped. Checking each record against those already
// added took 23 s for 40,000 and grew with the square (days for a
// transfer's 4M).
func TestAttackBigRRsetLoad(t *testing.T) {
	const n = 80000
	var b strings.Builder
	b.WriteString("$ORIGIN r.test.\n@ 60 SOA ns1 hm 1 2 3 4 5\n@ 60 NS ns1\nns1 60 A 192.0.2.1\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "big 60 A 10.%d.%d.%d\n", i>>16&255, i>>8&255, i&255)
		fmt.Fprintf(&b, "BIG 30 A 10.%d.%d.%d\n", i>>16&255, i>>8&255, i&255) // a duplicate (TTLs aside)
	}
	start := time.Now()
	z, err := ParseZone(strings.NewReader(b.String()), "r.test.zone")
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(z.nodes["big.r.test."].rrsets[1]); got != n || z.Count != n+3 {
		t.Fatalf("%d records in the RRset, %d in the zone; want %d and %d", got, z.Count, n, n+3)
	}
	if ttl := z.nodes["big.r.test."].rrsets[1][0].Header().Ttl; ttl != 60 {
		t.Errorf("TTL %d, want 60 (the first of each duplicate kept)", ttl)
	}
	if took > 20*time.Second {
		t.Fatalf("%d records in one RRset (and as many duplicates) took %v to load", n, took)
	}
	t.Logf("attack: %d records in one RRset plus %d duplicates loaded in %v", n, n, took.Round(time.Millisecond))
}

// TestAttackAnswerAmplification: 5,000 CNAMEs to one RRset of 2,000
// records (129 KB of zone text) made 164 MB of packed answers, each CNAME's
// answer holding the whole RRset; such a zone, from a file or a hostile
// primary, is refused with the reason.
func TestAttackAnswerAmplification(t *testing.T) {
	var b strings.Builder
	b.WriteString("$ORIGIN r.test.\n@ 60 SOA ns1 hm 1 2 3 4 5\n@ 60 NS ns1\nns1 60 A 192.0.2.1\n")
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&b, "big 60 A 10.0.%d.%d\n", i>>8&255, i&255)
	}
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, "c%d 60 CNAME big\n", i)
	}
	_, err := ParseZone(strings.NewReader(b.String()), "r.test.zone")
	if err == nil || !strings.Contains(err.Error(), "times its records") {
		t.Fatalf("5,000 CNAMEs to 2,000 records: %v, want the zone refused", err)
	}
	t.Logf("attack: %d KB zone whose answers would take 164 MB refused: %v", b.Len()>>10, err)
}
