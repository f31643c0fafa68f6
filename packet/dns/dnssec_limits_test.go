package dns

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// nsec3Zone is the text of it.test with a complete NSEC3 chain (and its
// NSEC3PARAM) hashed with the given iterations, signed by one made-up
// RRSIG (the load does not verify them).
func nsec3Zone(iterations uint16) string { return nsec3ZoneSalt(iterations, "abcd") }

// nsec3ZoneSalt is nsec3Zone with the salt given (hex).
func nsec3ZoneSalt(iterations uint16, salt string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN it.test.\n@ 60 SOA ns1 hm 1 2 3 4 5\n@ 60 NS ns1\n@ 60 NSEC3PARAM 1 0 %d %s\n@ 60 RRSIG SOA 13 2 60 20380101000000 20250101000000 1 it.test. AAAA\nns1 60 A 192.0.2.1\nwww 60 A 192.0.2.2\n", iterations, salt)
	types := map[string]string{"it.test.": "NS SOA RRSIG NSEC3PARAM", "ns1.it.test.": "A", "www.it.test.": "A"}
	var hashes []string
	byHash := map[string]string{}
	for name := range types {
		s, _ := hex.DecodeString(salt)
		h := strings.ToLower(nsec3Base32((&chain{iterations: iterations, salt: s}).hash(mustWire(name))))
		hashes = append(hashes, h)
		byHash[h] = name
	}
	sort.Strings(hashes)
	for i, h := range hashes {
		fmt.Fprintf(&b, "%s 60 NSEC3 1 0 %d %s %s %s\n", h, iterations, salt, hashes[(i+1)%len(hashes)], types[byHash[h]])
	}
	return b.String()
}

func nsec3Base32(h [20]byte) string {
	const alpha = "0123456789abcdefghijklmnopqrstuv"
	var out []byte
	var acc, bits uint
	for _, c := range h {
		acc, bits = acc<<8|uint(c), bits+8
		for bits >= 5 {
			bits -= 5
			out = append(out, alpha[acc>>bits&31])
		}
	}
	return string(out)
}

// TestNSEC3IterationsBound: an NSEC3 chain of at most 150 iterations
// loads; one with more is refused with the reason, so no query can make
// the server hash a name that many times (RFC 9276 3.2: validators treat
// such zones as insecure anyway).
func TestNSEC3IterationsBound(t *testing.T) {
	z, err := ParseZone(strings.NewReader(nsec3Zone(maxNSEC3Iterations)), "it.test.zone")
	if err != nil || z.chain == nil || z.chain.kind != denyNSEC3 || len(z.chain.links) != 3 {
		t.Fatalf("%d iterations: %v, chain %+v", maxNSEC3Iterations, err, z)
	}
	_, err = ParseZone(strings.NewReader(nsec3Zone(maxNSEC3Iterations+1)), "it.test.zone")
	if err == nil || !strings.Contains(err.Error(), "151 NSEC3 iterations") || !strings.Contains(err.Error(), "re-sign") {
		t.Fatalf("%d iterations: %v, want the limit named", maxNSEC3Iterations+1, err)
	}
}

// TestAttackNSEC3Iterations: a zone (from a file or a hostile primary's
// transfer) hashed with 65535 iterations, the most NSEC3 allows, is
// refused: served, each NXDOMAIN query would cost 65536 SHA-1 hashes.
func TestAttackNSEC3Iterations(t *testing.T) {
	text := nsec3Zone(65535)
	if _, err := ParseZone(strings.NewReader(text), "it.test.zone"); err == nil {
		t.Fatal("a zone with 65535 NSEC3 iterations loaded")
	}
	t.Logf("attack: zone with 65535 NSEC3 iterations refused at load (each NXDOMAIN would hash 65536 times; the limit is %d)", maxNSEC3Iterations)
}

// TestAttackProofSize: an NSEC3 record with 200 RRSIGs (made up: they are
// not verified at load) is refused. Its proof would be copied into the
// negative answers of every name whose wildcard it covers: 37 KB more of
// zone text took 235 MB more heap with 20,000 names.
func TestAttackProofSize(t *testing.T) {
	text := nsec3Zone(0)
	var b strings.Builder
	b.WriteString(text)
	first := strings.Fields(text[strings.Index(text, " 60 NSEC3 ")-32:])[0] // a hashed owner
	for i := range 200 {
		fmt.Fprintf(&b, "%s 60 RRSIG NSEC3 13 3 60 20380101000000 20250101000000 %d it.test. %s\n", first, i, strings.Repeat("A", 88))
	}
	_, err := ParseZone(strings.NewReader(b.String()), "it.test.zone")
	if err == nil || !strings.Contains(err.Error(), "201 records") {
		t.Fatalf("an NSEC3 with 200 RRSIGs: %v, want it refused", err)
	}
	t.Logf("attack: NSEC3 record with 200 RRSIGs refused at load: %v", err)
}

// BenchmarkNXDOMAINNSEC3Iterations is the cost of an NXDOMAIN with DO in
// an NSEC3 zone, which hashes the next closer name at query time, at no
// extra iterations and at the most a zone may have.
func BenchmarkNXDOMAINNSEC3Iterations(b *testing.B) {
	for _, it := range []uint16{0, maxNSEC3Iterations} {
		f := filepath.Join(b.TempDir(), "it.test.zone")
		if err := os.WriteFile(f, []byte(nsec3Zone(it)), 0o644); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(it), func(b *testing.B) {
			benchQueries(b, newServerOf(b, []string{f}), true, []benchQuery{{"nxdomain", newQuery("nope.it.test.", mdns.TypeA)}})
		})
	}
}

// TestNSEC3SaltTooLong: a salt longer than its one-byte length (255)
// is refused: packed, its length wraps and the records served are
// malformed (and the names hashed with a salt no validator sees).
func TestNSEC3SaltTooLong(t *testing.T) {
	text := nsec3ZoneSalt(0, strings.Repeat("ab", 256))
	_, err := ParseZone(strings.NewReader(text), "it.test.zone")
	if err == nil || !strings.Contains(err.Error(), "salt of 256 bytes") {
		t.Fatalf("a 256-byte NSEC3 salt: %v, want it refused", err)
	}
}
