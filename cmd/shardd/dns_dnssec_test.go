//go:build linux

package main

import (
	"testing"
)

// signedDir holds the example zones signed (testdata/dns/signed/gen.sh):
// example.com with NSEC, edge.test with NSEC3 and opt-out, child.edge.test
// and 2.0.192.in-addr.arpa with NSEC3.
const signedDir = "../../testdata/dns/signed"

// signedQuestions cover each DNSSEC case in both chains: positive answers,
// NODATA, NXDOMAIN, wildcard answers and wildcard NODATA, secure and
// insecure referrals, DNSKEY, CDS and CDNSKEY, DS at the parent, CNAME
// chains, empty non-terminals, and the DNSSEC types asked for by name.
var signedQuestions = [][]string{
	// example.com: NSEC.
	{"example.com", "SOA"}, {"example.com", "A"}, {"example.com", "MX"}, {"example.com", "DNSKEY"}, {"example.com", "NSEC"},
	{"example.com", "RRSIG"}, {"example.com", "NSEC3PARAM"}, {"example.com", "ANY"}, {"example.com", "DS"},
	{"example.com", "CDS"}, {"example.com", "CDNSKEY"}, {"+bufsize=512", "+ignore", "example.com", "CDNSKEY"},
	{"www.example.com", "A"}, {"www.example.com", "CNAME"}, {"www.example.com", "TXT"}, {"outside.example.com", "A"},
	{"ftp.example.com", "AAAA"}, {"nope.example.com", "A"}, {"x.y.nope.example.com", "A"}, {"zzz.example.com", "A"},
	{"b.example.com", "A"}, {"x.b.example.com", "A"}, {"a.b.example.com", "A"},
	{"a.apps.example.com", "A"}, {"a.b.apps.example.com", "TXT"}, {"a.apps.example.com", "MX"}, {"host.apps.example.com", "TXT"},
	{"*.apps.example.com", "A"}, {"q.alias.example.com", "AAAA"}, {"q.alias.example.com", "A"},
	{"sub.example.com", "A"}, {"sub.example.com", "NS"}, {"sub.example.com", "DS"}, {"x.sub.example.com", "A"},
	{"_sip._udp.example.com", "SRV"}, {"big.example.com", "TXT"}, {"+bufsize=4096", "huge.example.com", "TXT"},
	{"+bufsize=512", "example.com", "DNSKEY"}, {"loop1.example.com", "A"},
	// edge.test: NSEC3 with opt-out, a secure child and an insecure one.
	{"edge.test", "SOA"}, {"edge.test", "DNSKEY"}, {"edge.test", "NSEC3PARAM"}, {"nx.edge.test", "A"}, {"a.nx.edge.test", "A"},
	{"ns1.edge.test", "AAAA"}, {"alias.edge.test", "A"}, {"alias.edge.test", "TXT"}, {"deep.edge.test", "A"},
	{"x.apps.edge.test", "A"}, {"x.apps.edge.test", "MX"}, {"x.y.apps.edge.test", "TXT"}, {"apps.edge.test", "A"},
	{"nx.apps.edge.test", "MX"}, {"child.edge.test", "DS"}, {"www.child.edge.test", "A"}, {"child.edge.test", "NS"},
	{"big.edge.test", "DS"}, {"x.big.edge.test", "A"}, {"todeleg.edge.test", "DS"}, {"mxs.edge.test", "MX"},
	{"+bufsize=1232", "x.big.edge.test", "A"}, {"odmb38fpgkvhmb42d3vkhat85k49jaaa.edge.test", "NSEC3"}, {"edge.test", "NSEC3"},
	{"edge.test", "RRSIG"}, {"x.apps.edge.test", "RRSIG"}, {"edge.test", "ANY"},
	// child.edge.test (served beside its parent) and the reverse zone.
	{"child.edge.test", "SOA"}, {"child.edge.test", "DNSKEY"}, {"nx.child.edge.test", "A"}, {"www.child.edge.test", "TXT"},
	{"-x", "192.0.2.1"}, {"-x", "192.0.2.9"}, {"2.0.192.in-addr.arpa", "NS"},
	// Sizes: the reply dig gets before any retry over TCP (+ignore). The
	// proofs found at query time are compressed as Knot compresses them, so
	// the same answers fit. (Where they do not, both send the RRsets that
	// fit with TC: TestSignedTruncatedSameAsKnot.)
	{"+bufsize=512", "+ignore", "nope.example.com", "A"}, {"+bufsize=512", "+ignore", "a1.apps.example.com", "A"},
	{"+bufsize=512", "+ignore", "zz.apps.example.com", "TXT"}, {"+bufsize=512", "+ignore", "www.example.com", "A"},
	{"+bufsize=512", "+ignore", "ns1.edge.test", "AAAA"}, {"+bufsize=512", "+ignore", "x.apps.edge.test", "A"},
	{"+bufsize=1232", "+ignore", "mxs.edge.test", "MX"}, {"+bufsize=1232", "+ignore", "example.com", "ANY"},
}

// TestSignedSameAnswersAsKnot serves the signed zones with Knot DNS and
// shardd and compares what dig +dnssec (and plain dig) prints, over UDP and
// TCP: RRSIGs, NSEC and NSEC3 proofs, their order and truncation.
func TestSignedSameAnswersAsKnot(t *testing.T) {
	knot, ours := signedServers(t)
	for _, do := range []string{"+dnssec", "+nodnssec"} {
		for _, transport := range []string{"+notcp", "+tcp"} {
			for _, q := range signedQuestions {
				sameAsKnot(t, knot, ours, append([]string{do, transport, "+nocmd", "+multiline"}, q...)...)
			}
		}
	}
}
