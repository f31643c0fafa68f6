package dns

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

// TestWildcardNear16KiBWire: a signed wildcard MX answer whose body is
// just under the 16 KiB a compression pointer reaches (the most a
// template whose pointers move with the query name's length may hold),
// asked over TCP with DO for names of up to 255 bytes, so that the
// query-time NSEC proof (an RSA-4096 signature) goes in before the
// additional A record and its RRSIG, whose owner points at the A record's:
// every reply passes wireCheck (each pointer backwards, at a name, in 14
// bits).
func TestWildcardNear16KiBWire(t *testing.T) {
	sig := func(owner, covered string, size int) string {
		return fmt.Sprintf("%s 60 RRSIG %s 8 2 60 20380101000000 20250101000000 1 b.test. %s\n", owner, covered,
			strings.Repeat("A", size/3*4)+[]string{"", "AA==", "AAA="}[size%3])
	}
	checked, past := 0, 0
	for n := 700; n <= 760; n += 3 { // bodies of 15.5 KiB to the 16 KiB where the template is packed uncompressed
		var text strings.Builder
		text.WriteString("$ORIGIN b.test.\n@ 60 SOA ns hm 1 2 3 4 5\n@ 60 NS ns\n" + sig("@", "SOA", 64) + sig("@", "NS", 64))
		text.WriteString("@ 60 NSEC mx.b.test. NS SOA RRSIG NSEC\n" + sig("@", "NSEC", 64))
		text.WriteString("mx 60 A 192.0.2.1\n" + sig("mx", "A", 64) + "mx 60 NSEC ns.b.test. A RRSIG NSEC\n" + sig("mx", "NSEC", 64))
		text.WriteString("ns 60 A 192.0.2.2\n" + sig("ns", "A", 64) + "ns 60 NSEC *.w.b.test. A RRSIG NSEC\n" + sig("ns", "NSEC", 64))
		for i := range n { // out of zone: no additional records
			text.WriteString(fmt.Sprintf("*.w 60 MX %d m%03d.example.org.\n", i, i))
		}
		// Past the 15th (no hint for its A record) and not last (the
		// A record's owner is written out, after the proof).
		text.WriteString(fmt.Sprintf("*.w 60 MX %d mx.b.test.\n", n/2))
		text.WriteString(sig("*.w", "MX", 64) + "*.w 60 NSEC b.test. MX RRSIG NSEC\n" + sig("*.w", "NSEC", 512))
		f := filepath.Join(t.TempDir(), "b.test.zone")
		if err := os.WriteFile(f, []byte(text.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		h := newServerOf(t, []string{f}).NewHandler(0)
		for l := 1; l <= 41; l += 4 { // query names of 215 to 255 bytes
			name := strings.Repeat("q", l) + "." + strings.Repeat("r", 63) + "." + strings.Repeat("s", 63) + "." + strings.Repeat("t", 63) + ".w.b.test."
			q := newQuery(name, mdns.TypeMX)
			q.SetEdns0(4096, true)
			raw, _ := q.Pack()
			out := exchange(t, h, raw, packet.TCP)
			if _, err := wireCheck(out); err != nil {
				t.Fatalf("%d MX, %d-byte name: %d bytes: %v", n, len(name)+1, len(out), err)
			}
			checked++
			if len(out) > 0x3FFF {
				past++
			}
		}
	}
	if past == 0 {
		t.Fatal("no reply past 16 KiB: the test does not reach the case")
	}
	t.Logf("%d replies checked, %d past 16 KiB", checked, past)
}
