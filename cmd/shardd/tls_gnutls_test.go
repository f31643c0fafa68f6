//go:build linux

package main

import (
	"crypto/x509"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// gnutlsCli runs gnutls-cli against x's TLS address, verifying it with the
// test CA; extra are more options. It returns the output and whether the
// client exited 0.
func (x *dotDaemon) gnutlsCli(t *testing.T, extra ...string) (string, bool) {
	t.Helper()
	args := append([]string{"--x509cafile", x.ca.caFile, "-p", fmt.Sprint(x.tls.Port())}, extra...)
	cmd := exec.Command(requireTool(t, "gnutls-cli"), append(args, x.tls.Addr().String())...)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// gnutlsSuites maps gnutls-cli's cipher name to the word of the IANA
// suite names (the cipher label) that stands for it.
var gnutlsSuites = map[string]string{"AES-128-GCM": "AES_128_GCM", "AES-256-GCM": "AES_256_GCM", "CHACHA20-POLY1305": "CHACHA20_POLY1305"}

// TestDoTGnutlsCli: GnuTLS's client gets TLS 1.2 and 1.3 with ALPN dot
// and resumes its session (-r) on either; TLS 1.1 and a client offering
// only another ALPN protocol are refused. The server counts the resumed
// handshakes and each connection's cipher under the suite gnutls-cli
// reports.
func TestDoTGnutlsCli(t *testing.T) {
	x := startDoT(t)
	ciphers := map[string]int{} // the suite word, by connections
	for _, v := range []string{"1.2", "1.3"} {
		out, ok := x.gnutlsCli(t, "-r", "--alpn", "dot", "--priority", "NORMAL:-VERS-ALL:+VERS-TLS"+v)
		if !ok || strings.Count(out, "- Application protocol: dot") != 2 || !strings.Contains(out, "*** This is a resumed session") ||
			strings.Count(out, "- Description: (TLS"+v+"-") != 2 {
			t.Fatalf("gnutls-cli -r over TLS %s:\n%s", v, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "- Description: (TLS") {
				parts := strings.Split(strings.TrimSuffix(line, ")"), "-(")
				ciphers[gnutlsSuites[parts[len(parts)-1]]]++
			}
		}
	}
	if out, ok := x.gnutlsCli(t, "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.1"); ok || !strings.Contains(out, "Error in protocol version") {
		t.Fatalf("gnutls-cli over TLS 1.1 (exit 0: %v):\n%s", ok, out)
	}
	if out, ok := x.gnutlsCli(t, "--alpn", "h2"); ok || !strings.Contains(out, "No supported application protocol") {
		t.Fatalf("gnutls-cli with ALPN h2 only (exit 0: %v):\n%s", ok, out)
	}
	testkit.PollFor(t, "the handshakes counted", testkit.WaitTimeout, func() bool {
		return x.handshakes(t, "ok") == 4 && x.handshakes(t, "protocol") == 2
	})
	text := testkit.Scrape(t, x.metrics)
	if n := testkit.MetricSum(text, "shardd_tls_resumed_total", ""); n != 2 {
		t.Errorf("%v resumed handshakes, want 2", n)
	}
	for word, n := range ciphers {
		if word == "" {
			t.Fatalf("a cipher gnutls-cli names is not in gnutlsSuites: %v", ciphers)
		}
		if got := testkit.MetricSum(text, "shardd_tls_cipher_connections_total", word); got != float64(n) {
			t.Errorf("shardd_tls_cipher_connections_total{cipher=~%s} = %v, want %d\n%s", word, got, n, text)
		}
	}
}

// TestDoTGnutlsCliMutual: with --tls-client-ca, gnutls-cli without a
// certificate is refused over TLS 1.2 and 1.3 (counted bad_certificate),
// and with one from the CA is served.
func TestDoTGnutlsCliMutual(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	x := startDoT(t, "--tls-client-ca", ca.caFile)
	for _, v := range []string{"1.2", "1.3"} {
		out, ok := x.gnutlsCli(t, "--alpn", "dot", "--priority", "NORMAL:-VERS-ALL:+VERS-TLS"+v)
		if ok || !strings.Contains(out, "Fatal error") {
			t.Fatalf("gnutls-cli without a certificate over TLS %s was served:\n%s", v, out)
		}
	}
	cert := ca.clientCert(t, "resolver")
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	writePEM(t, certFile, "CERTIFICATE", cert.Certificate[0])
	kb, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", kb)
	if out, ok := x.gnutlsCli(t, "--alpn", "dot", "--x509certfile", certFile, "--x509keyfile", keyFile); !ok || strings.Contains(out, "Fatal error") {
		t.Fatalf("gnutls-cli with the CA's certificate:\n%s", out)
	}
	testkit.PollFor(t, "the handshakes counted", testkit.WaitTimeout, func() bool {
		return x.handshakes(t, "bad_certificate") == 2 && x.handshakes(t, "ok") == 1
	})
}
