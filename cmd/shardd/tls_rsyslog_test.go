//go:build linux

package main

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestSyslogFromRsyslogGTLS: rsyslog forwards over RFC 5425 with its gtls
// driver (octet-counted frames, the server's name checked against the test
// CA) into shardd --tls, server-authenticated and mutual: every message
// exactly once in the sink, and with mutual TLS the client certificate's
// subject in tls_peer.
func TestSyslogFromRsyslogGTLS(t *testing.T) {
	rsyslogd := requireTool(t, "rsyslogd")
	logger := requireTool(t, "logger")
	if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 && os.Getenv("SHARDD_REQUIRE_TOOLS") != "1" {
		t.Skip("rsyslog's gtls driver is not installed (Debian: rsyslog-gnutls)")
	}
	for _, mutual := range []bool{false, true} {
		t.Run(map[bool]string{false: "server-authenticated", true: "mutual"}[mutual], func(t *testing.T) {
			dir := t.TempDir()
			ca := newTestCA(t, dir)
			certFile, keyFile, sink := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "out.ndjson")
			ca.issue(t, 1, certFile, keyFile)
			args := []string{"--handler", "syslog", "--sink", sink, "--shards", "2", "--tls-cert", certFile, "--tls-key", keyFile, "--tls", "127.0.0.2:0"}
			global := fmt.Sprintf("workDirectory=%q DefaultNetstreamDriverCAFile=%q", dir, ca.caFile)
			if mutual {
				args = append(args, "--tls-client-ca", ca.caFile)
				cc := ca.clientCert(t, "rsyslog-client")
				kb, err := x509.MarshalPKCS8PrivateKey(cc.PrivateKey)
				if err != nil {
					t.Fatal(err)
				}
				writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", cc.Certificate[0])
				writePEM(t, filepath.Join(dir, "client.key"), "PRIVATE KEY", kb)
				global += fmt.Sprintf(" DefaultNetstreamDriverCertFile=%q DefaultNetstreamDriverKeyFile=%q", filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"))
			}
			d := startDaemon(t, args...)
			to := d.WaitLine(t, "listening")["bound"].(string)
			port := to[strings.LastIndexByte(to, ':')+1:]
			in := testkit.FreeUDPPort(t)
			conf := filepath.Join(dir, "rsyslog.conf")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf(`global(%s)
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="%d" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.2" port="%s" protocol="tcp" TCP_Framing="octet-counted"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="dns.test"
         template="RSYSLOG_SyslogProtocol23Format" action.resumeRetryCount="-1" action.resumeInterval="1")
}
`, global, in, port)), 0o644); err != nil {
				t.Fatal(err)
			}
			rs := exec.Command(rsyslogd, "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid"))
			var rsOut testkit.LockedBuffer
			rs.Stdout, rs.Stderr = &rsOut, &rsOut
			if err := rs.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rs.Process.Kill(); _ = rs.Wait() }) // only the rsyslogd this test started
			send := func(msg string) {
				t.Helper()
				if out, err := exec.Command(logger, "-d", "-n", "127.0.0.1", "-P", strconv.Itoa(in), "--rfc5424", "-t", "gtlsapp", msg).CombinedOutput(); err != nil {
					t.Fatalf("logger: %v %s", err, out)
				}
			}
			// rsyslogd forwards once it has started and connected: probe until a probe arrives.
			deadline := time.Now().Add(testkit.WaitTimeout)
			for probed := false; !probed; {
				if time.Now().After(deadline) {
					t.Fatalf("rsyslogd forwarded nothing over TLS within %v:\n%s\n%s", testkit.WaitTimeout, rsOut.String(), d.Stderr)
				}
				send("probe")
				time.Sleep(200 * time.Millisecond)
				b, _ := os.ReadFile(sink)
				probed = bytes.Contains(b, []byte(`"probe"`))
			}
			const n = 40
			for i := 0; i < n; i++ {
				send("gtls test " + strconv.Itoa(i))
			}
			count := func() (seen map[string]int, peers map[string]int) {
				seen, peers = map[string]int{}, map[string]int{}
				for _, r := range testkit.ReadNDJSON(t, sink) {
					if m, _ := r["message"].(string); strings.HasPrefix(m, "gtls test ") {
						seen[m]++
						p, _ := r["tls_peer"].(string)
						peers[p]++
					}
				}
				return seen, peers
			}
			testkit.PollFor(t, "every message in the sink", testkit.WaitTimeout, func() bool { s, _ := count(); return len(s) == n })
			_ = rs.Process.Signal(syscall.SIGTERM)
			if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
				t.Fatalf("exit %d:\n%s", code, d.Stderr)
			}
			seen, peers := count()
			for i := 0; i < n; i++ {
				if k := "gtls test " + strconv.Itoa(i); seen[k] != 1 {
					t.Errorf("%q arrived %d times", k, seen[k])
				}
			}
			wantPeer := ""
			if mutual {
				wantPeer = "CN=rsyslog-client,O=shardd tests"
			}
			if peers[wantPeer] != n || len(peers) != 1 {
				t.Errorf("tls_peer of the records: %v, want %q on all %d", peers, wantPeer, n)
			}
		})
	}
}
