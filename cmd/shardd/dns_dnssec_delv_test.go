//go:build linux

package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// delvCase is a question to delv in the zone root and the verdict wanted.
type delvCase struct {
	root string
	q    []string
	want string
}

// signedVerdicts are the questions TestSignedAnswersValidate asks, with
// the verdict delv gives for each (both chains: NSEC and NSEC3).
var signedVerdicts = []delvCase{
	{"example.com", []string{"example.com", "A"}, "; fully validated"},
	{"example.com", []string{"example.com", "DNSKEY"}, "; fully validated"},
	{"example.com", []string{"example.com", "CDS"}, "; fully validated"},
	{"example.com", []string{"example.com", "CDNSKEY"}, "; fully validated"},
	{"example.com", []string{"www.example.com", "A"}, "; fully validated"},
	{"example.com", []string{"nope.example.com", "A"}, "; negative response, fully validated"},
	{"example.com", []string{"x.y.nope.example.com", "TXT"}, "; negative response, fully validated"},
	{"example.com", []string{"ftp.example.com", "AAAA"}, "; negative response, fully validated"},
	{"example.com", []string{"b.example.com", "A"}, "; negative response, fully validated"},
	{"example.com", []string{"a1.apps.example.com", "A"}, "; fully validated"},
	{"example.com", []string{"zz.apps.example.com", "TXT"}, "; fully validated"},
	{"example.com", []string{"a1.apps.example.com", "MX"}, "; negative response, fully validated"},
	{"example.com", []string{"q.alias.example.com", "A"}, "; fully validated"},
	{"example.com", []string{"sub.example.com", "DS"}, "; negative response, fully validated"},
	{"edge.test", []string{"edge.test", "SOA"}, "; fully validated"},
	{"edge.test", []string{"nx.edge.test", "A"}, "; negative response, fully validated"},
	{"edge.test", []string{"a.nx.edge.test", "A"}, "; negative response, fully validated"},
	{"edge.test", []string{"ns1.edge.test", "AAAA"}, "; negative response, fully validated"},
	{"edge.test", []string{"x.apps.edge.test", "A"}, "; unsigned answer"},
	{"edge.test", []string{"x.apps.edge.test", "MX"}, "; negative response, fully validated"},
	{"edge.test", []string{"child.edge.test", "DS"}, "; fully validated"},
	{"edge.test", []string{"big.edge.test", "DS"}, "; negative response, fully validated"},
	{"edge.test", []string{"www.child.edge.test", "A"}, "; fully validated"},
	{"edge.test", []string{"nx.child.edge.test", "A"}, "; negative response, fully validated"},
	{"2.0.192.in-addr.arpa", []string{"-x", "192.0.2.1"}, "; fully validated"},
	{"2.0.192.in-addr.arpa", []string{"-x", "192.0.2.9"}, "; negative response, fully validated"},
}

// TestSignedAnswersValidate asks BIND's validator, delv, with the zones'
// trust anchors, for answers of every kind from shardd: each validates
// (negative answers too: the NSEC and NSEC3 proofs hold), and delv says
// the same of Knot DNS's answer. The one answer that is not "fully
// validated" is a wildcard answer whose next closer name falls in an
// opt-out span (edge.test): validators call it insecure (RFC 5155 9.2),
// from Knot as from shardd.
func TestSignedAnswersValidate(t *testing.T) {
	delv := requireTool(t, "delv")
	knot, ours := signedServers(t)
	checkVerdicts(t, delv, knot, ours, signedDir+"/trust-anchors.conf", signedVerdicts)
}

// checkVerdicts asks delv each case of shardd (ours) and Knot DNS (knot)
// with the trust anchors in anchors, and fails where either's verdict is
// not the one wanted.
func checkVerdicts(t *testing.T, delv string, knot, ours fmt.Stringer, anchors string, cases []delvCase) {
	t.Helper()
	verdict := func(server fmt.Stringer, root string, q []string) string {
		addr := strings.Split(server.String(), ":")
		args := append([]string{"@" + addr[0], "-p", addr[1], "-a", anchors, "+root=" + root}, q...)
		out, _ := exec.Command(delv, args...).CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "validated") || strings.Contains(line, "unsigned") || strings.Contains(line, "validation failed") || strings.Contains(line, "insecure") {
				return strings.TrimSpace(line)
			}
		}
		return strings.TrimSpace(string(out))
	}
	for _, c := range cases {
		got, theirs := verdict(ours, c.root, c.q), verdict(knot, c.root, c.q)
		if got != c.want || theirs != c.want {
			t.Errorf("delv %v: shardd %q, Knot %q, want %q", c.q, got, theirs, c.want)
		}
	}
}
