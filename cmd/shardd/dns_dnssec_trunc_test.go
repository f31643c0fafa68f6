//go:build linux

package main

import (
	"fmt"
	"net/netip"
	"regexp"
	"testing"
)

// signedServers starts Knot DNS and shardd serving the signed zones
// (signedDir) and returns their addresses.
func signedServers(t *testing.T) (knot, ours netip.AddrPort) {
	t.Helper()
	knot = startKnotZones(t, signedDir)
	var zones []string
	for _, z := range knotZones {
		zones = append(zones, "--zone", signedDir+"/"+z+".zone")
	}
	_, ours, _ = dnsDaemon(t, zones...)
	return knot, ours
}

// truncatedQuestions are signed answers larger than 512 bytes: NXDOMAIN
// and NODATA with NSEC3 proofs, wildcard answers and NODATA, CNAME chains,
// answers whose own RRset or its RRSIG does not fit, referrals with DS
// proofs and glue.
var truncatedQuestions = [][]string{
	{"nx.edge.test", "A"}, {"a.nx.edge.test", "A"}, {"x.apps.edge.test", "MX"}, {"nx.apps.edge.test", "MX"},
	{"x.y.apps.edge.test", "TXT"}, {"nx.child.edge.test", "A"}, {"-x", "192.0.2.9"}, {"x.y.nope.example.com", "A"},
	{"q.alias.example.com", "A"}, {"q.alias.example.com", "AAAA"}, {"big.example.com", "TXT"}, {"huge.example.com", "TXT"},
	{"big.edge.test", "DS"}, {"todeleg.edge.test", "DS"}, {"x.big.edge.test", "A"}, {"mxs.edge.test", "MX"},
	{"example.com", "DNSKEY"}, {"edge.test", "DNSKEY"}, {"www.example.com", "TXT"},
}

// TestSignedTruncatedSameAsKnot asks Knot DNS and shardd, serving the
// signed zones, questions whose answers do not fit small UDP sizes, at
// several sizes, and compares what dig prints of the first reply (+ignore:
// no retry over TCP), with its size: the same RRsets, whole and in the
// same order, up to the first that does not fit, TC set alike, the same
// OPT. (608: www.example.com/TXT is 617 bytes, as Knot compresses it.)
func TestSignedTruncatedSameAsKnot(t *testing.T) {
	knot, ours := signedServers(t)
	for _, q := range truncatedQuestions {
		for _, size := range []int{512, 544, 576, 608, 640, 704, 768, 832, 1024, 1152, 1232} {
			sameAsKnot(t, knot, ours, append([]string{"+dnssec", "+notcp", "+ignore", "+nocmd", "+multiline", fmt.Sprintf("+bufsize=%d", size)}, q...)...)
		}
		sameAsKnot(t, knot, ours, append([]string{"+nodnssec", "+notcp", "+ignore", "+nocmd", "+noedns"}, q...)...)
	}
}

// msgSize is what dig prints of a reply's size.
var msgSize = regexp.MustCompile(`MSG SIZE +rcvd: \d+`)

// TestSignedProofSizesAsKnot: replies with a query-time proof (NXDOMAIN,
// wildcard answers and NODATA, with NSEC and NSEC3) are as long as Knot
// DNS's, byte for byte: the proof's owner shares the labels it has in
// common with the query name through a pointer into the question, its
// RRSIGs' owners point at it, as Knot compresses them. So they truncate
// at the same sizes.
func TestSignedProofSizesAsKnot(t *testing.T) {
	knot, ours := signedServers(t)
	for _, q := range [][]string{
		{"nope.example.com", "A"}, {"x.y.nope.example.com", "A"}, {"x.b.example.com", "A"}, {"a.apps.example.com", "A"},
		{"a.b.apps.example.com", "TXT"}, {"a.apps.example.com", "MX"}, {"q.alias.example.com", "AAAA"},
		{"nx.edge.test", "A"}, {"a.nx.edge.test", "A"}, {"x.apps.edge.test", "A"}, {"x.y.apps.edge.test", "MX"},
		{"nx.child.edge.test", "A"}, {"-x", "192.0.2.9"},
	} {
		args := append([]string{"+dnssec", "+notcp", "+bufsize=4096"}, q...)
		a, b := msgSize.FindString(dig(t, "dig", knot, args...).out), msgSize.FindString(dig(t, "dig", ours, args...).out)
		if a == "" || a != b {
			t.Errorf("dig %v: Knot %q, shardd %q", args, a, b)
		}
	}
}
