//go:build linux

package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestDoTTicketResumesAcrossUpgrade: a client's session ticket from the
// process before an upgrade (USR2) resumes on the new one: the keys went
// over the pipe, and the new process counts the resumption.
func TestDoTTicketResumesAcrossUpgrade(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "shardd.pid")
	x := startDoT(t, "--pidfile", pidfile)
	up := testkit.NewUpgrades(t, pidfile)
	cc := &tls.Config{RootCAs: x.ca.pool, NextProtos: []string{"dot"}, ServerName: "dns.test", ClientSessionCache: tls.NewLRUClientSessionCache(1)}
	ask := func(wantResumed bool, when string) {
		t.Helper()
		cs, err := x.dotWith(cc)
		if err != nil || cs.DidResume != wantResumed {
			t.Fatalf("%s: resumed %v (%v), want %v\n%s", when, cs.DidResume, err, wantResumed, x.d.Stderr)
		}
	}
	ask(false, "the first query")
	ask(true, "the second query")
	testkit.PollFor(t, "the pidfile written", testkit.WaitTimeout, func() bool { return up.Pid() != 0 })
	old := up.Upgrade(t)
	testkit.PollFor(t, "the old process gone", testkit.WaitTimeout, func() bool { return syscall.Kill(old, 0) != nil })
	ask(true, "after the upgrade")
	x.d.WaitLine(t, "session ticket keys taken over from the previous process")
	if n := testkit.MetricSum(testkit.Scrape(t, x.metrics), "shardd_tls_resumed_total", ""); n != 1 {
		t.Fatalf("the new process counts %v resumed handshakes, want 1", n)
	}
	// The keys are in no environment variable of the new process.
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", up.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range strings.Split(string(env), "\x00") {
		if strings.HasPrefix(kv, envTicketKeys+"=") && len(kv) > len(envTicketKeys)+4 {
			t.Fatalf("environment %q: a descriptor number is all it may hold", kv)
		}
	}
}

// TestDoTClientCAReload: --tls-client-ca is reloaded on HUP and when the
// file changes; a file that does not load keeps the CAs in use and is
// logged (once by the poll for one change).
func TestDoTClientCAReload(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "client-ca.pem")
	first, second := newTestCA(t, t.TempDir()), newTestCA(t, t.TempDir())
	copyFile := func(from ...string) {
		t.Helper()
		var all []byte
		for _, f := range from {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		if err := os.WriteFile(caFile, all, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(first.caFile)
	x := startDoT(t, "--tls-client-ca", caFile)
	served := func(ca *testCA) bool {
		_, err := x.dotWith(&tls.Config{RootCAs: x.ca.pool, NextProtos: []string{"dot"}, Certificates: []tls.Certificate{ca.clientCert(t, "resolver")}})
		return err == nil
	}
	if !served(first) || served(second) {
		t.Fatal("before a reload: want the first CA's client served, the second's refused")
	}
	copyFile(second.caFile)
	if err := x.d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	x.d.WaitLine(t, "TLS client CAs reloaded")
	if served(first) || !served(second) {
		t.Fatal("after HUP: want the second CA's client served, the first's refused")
	}
	if err := os.WriteFile(caFile, []byte("no certificate here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := x.d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	x.d.WaitLine(t, "TLS client CAs not reloaded; the previous ones keep verifying")
	x.d.WaitLine(t, "TLS client CA file changed but does not load; the previous CAs keep verifying")
	if served(first) || !served(second) {
		t.Fatal("after a bad file: want the second CA still in use")
	}
	copyFile(first.caFile, second.caFile)
	if l := x.d.WaitLine(t, "TLS client CAs reloaded (file changed)"); l["certificates"] != 2.0 {
		t.Fatalf("reload line %v, want 2 certificates", l)
	}
	if !served(first) || !served(second) {
		t.Fatal("after the file changed: want both CAs' clients served")
	}
	if n := strings.Count(x.d.Stderr.String(), "TLS client CA file changed but does not load"); n != 1 {
		t.Fatalf("the bad file logged %d times by the poll, want once", n)
	}
	if n := x.handshakes(t, "bad_certificate"); n != 3 {
		t.Fatalf("%v handshakes bad_certificate, want 3", n)
	}
}
