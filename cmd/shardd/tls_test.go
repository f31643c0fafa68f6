//go:build linux

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// testCA is a certificate authority made by the test: it signs server
// certificates for 127.0.0.2 and "dns.test".
type testCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pool   *x509.CertPool
	caFile string // the CA certificate, PEM, for the command-line clients
}

func newTestCA(t *testing.T, dir string) *testCA {
	t.Helper()
	key := mustKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1000), Subject: pkix.Name{CommonName: "shardd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pool: x509.NewCertPool(), caFile: filepath.Join(dir, "ca.pem")}
	ca.pool.AddCert(cert)
	writePEM(t, ca.caFile, "CERTIFICATE", der)
	return ca
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue writes a server certificate with serial (and its key) to certFile
// and keyFile, and returns its NotAfter.
func (ca *testCA) issue(t *testing.T, serial int64, certFile, keyFile string) time.Time {
	t.Helper()
	key := mustKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "dns.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour).Truncate(time.Second),
		DNSNames: []string{"dns.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 2)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", kb)
	writePEM(t, certFile, "CERTIFICATE", der)
	return tmpl.NotAfter
}

// dotDaemon is shardd serving the example zone over UDP+TCP and over TLS.
type dotDaemon struct {
	d                 *daemon
	plain, tls        netip.AddrPort
	metrics           string
	ca                *testCA
	certFile, keyFile string
	notAfter          time.Time
}

func startDoT(t *testing.T, extra ...string) *dotDaemon {
	t.Helper()
	dir := t.TempDir()
	x := &dotDaemon{ca: newTestCA(t, dir), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	x.notAfter = x.ca.issue(t, 1, x.certFile, x.keyFile)
	args := append([]string{"--shards", "2", "--handler", "dns", "--zone", "../../testdata/dns/example.com.zone", "--proto", "udp,tcp",
		"--metrics", "127.0.0.1:0", "--tls-cert", x.certFile, "--tls-key", x.keyFile}, extra...)
	// Another loopback address for TLS: each address is given once.
	x.d = startDaemon(t, append(args, "127.0.0.1:0", "--tls", "127.0.0.2:0")...)
	x.plain = netip.MustParseAddrPort(x.d.WaitLine(t, "listening")["bound"].(string))
	l := x.d.WaitLine(t, "listening")
	if l["proto"] != "tls" || !strings.Contains(l["tcp_shape"].(string), "goroutines") {
		t.Fatalf("the TLS listening line: %v", l)
	}
	x.tls = netip.MustParseAddrPort(l["bound"].(string))
	x.metrics = "http://" + x.d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	return x
}

// serial dials the TLS address with Go's client and returns the serial of
// the certificate it was given.
func (x *dotDaemon) serial(t *testing.T) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: testkit.WaitTimeout}, "tcp", x.tls.String(), &tls.Config{RootCAs: x.ca.pool, NextProtos: []string{"dot"}})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "dot" {
		t.Fatalf("ALPN %q, want dot", p)
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// handshakes is shardd_tls_handshakes_total{result} summed over the shards.
func (x *dotDaemon) handshakes(t *testing.T, result string) float64 {
	return testkit.MetricSum(testkit.Scrape(t, x.metrics), "shardd_tls_handshakes_total", `result="`+result+`"`)
}

// TestDoTSameAnswersAsUDP: kdig +tls (Knot's client, GnuTLS) and dig +tls
// (BIND's, OpenSSL) get the answers they get over UDP, verifying the server
// against the test CA.
func TestDoTSameAnswersAsUDP(t *testing.T) {
	for _, tool := range []string{"kdig", "dig"} {
		t.Run(tool, func(t *testing.T) { dotSameAnswersAsUDP(t, requireTool(t, tool)) })
	}
}

func dotSameAnswersAsUDP(t *testing.T, client string) {
	x := startDoT(t)
	ask := func(tlsArgs []string, to netip.AddrPort, q ...string) string {
		args := append([]string{"@" + to.Addr().String(), "-p", fmt.Sprint(to.Port()), "+time=5", "+retry=0", "+noall", "+answer", "+authority", "+additional"}, tlsArgs...)
		out, err := exec.Command(client, append(args, q...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", client, args, err, out)
		}
		return string(out)
	}
	tlsArgs := []string{"+tls", "+tls-ca=" + x.ca.caFile, "+tls-hostname=dns.test"}
	for _, q := range [][]string{{"www.example.com", "A"}, {"example.com", "SOA"}, {"example.com", "MX"}, {"nope.example.com", "A"}, {"example.com", "NS"}} {
		udp, dot := ask(nil, x.plain, q...), ask(tlsArgs, x.tls, q...)
		if udp != dot || !strings.Contains(udp, "example.com.") {
			t.Errorf("%v: UDP\n%s\nTLS\n%s", q, udp, dot)
		}
	}
	if n := x.handshakes(t, "ok"); n != 5 {
		t.Errorf("%v handshakes ok, want 5", n)
	}
	exp := testkit.MetricSum(testkit.Scrape(t, x.metrics), "shardd_tls_cert_expiry_seconds", "")
	if exp != float64(x.notAfter.Unix()) {
		t.Errorf("shardd_tls_cert_expiry_seconds %v, want %d", exp, x.notAfter.Unix())
	}
}

// TestDoTOpenSSLVersions: openssl s_client gets TLS 1.2 (ECDHE with an
// AEAD) and 1.3 with ALPN dot, and TLS 1.1 is refused by the server
// (counted as protocol; the client is allowed 1.1 at security level 0).
func TestDoTOpenSSLVersions(t *testing.T) {
	openssl := requireTool(t, "openssl")
	x := startDoT(t)
	sClient := func(args ...string) (string, error) {
		cmd := exec.Command(openssl, append([]string{"s_client", "-connect", x.tls.String(), "-CAfile", x.ca.caFile, "-alpn", "dot"}, args...)...)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for v, want := range map[string]string{"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"} {
		out, err := sClient(v)
		if err != nil || !strings.Contains(out, "New, "+want) || !strings.Contains(out, "ALPN protocol: dot") || !strings.Contains(out, "Verify return code: 0 (ok)") {
			t.Fatalf("s_client %s: %v\n%s", v, err, out)
		}
		if v == "-tls1_2" && !strings.Contains(out, "Cipher is ECDHE-") {
			t.Errorf("TLS 1.2 suite not ECDHE:\n%s", out)
		}
	}
	if out, err := sClient("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"); err == nil {
		t.Fatalf("s_client -tls1_1 succeeded:\n%s", out)
	}
	testkit.PollFor(t, "the TLS 1.1 attempt counted by the server", testkit.WaitTimeout, func() bool {
		return x.handshakes(t, "protocol") == 1
	})
	if n := x.handshakes(t, "ok"); n != 2 {
		t.Errorf("%v handshakes ok, want 2", n)
	}
}

// TestDoTHandshakeTimeout: a client that connects and sends nothing is cut
// at --tls-handshake-timeout and counted.
func TestDoTHandshakeTimeout(t *testing.T) {
	x := startDoT(t, "--tls-handshake-timeout", "500ms")
	c := testkit.DialTCP(t, x.tls.String())
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(testkit.WaitTimeout))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || os.IsTimeout(err) {
		t.Fatalf("read %d, %v; want the server to close", n, err)
	}
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Fatalf("cut after %v, before the 500ms timeout", took)
	}
	testkit.PollFor(t, "the timeout counted", testkit.WaitTimeout, func() bool { return x.handshakes(t, "timeout") == 1 })
}

// TestDoTCertificateRotation: HUP loads a new pair (a new connection sees
// its serial), a bad pair keeps the old one serving and logs why, and a
// pair written without a signal is picked up by the file poll.
func TestDoTCertificateRotation(t *testing.T) {
	x := startDoT(t)
	if s := x.serial(t); s != "1" {
		t.Fatalf("serial %s, want 1", s)
	}
	x.ca.issue(t, 2, x.certFile, x.keyFile)
	if err := x.d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if l := x.d.WaitLine(t, "TLS certificate reloaded"); l["serial"] != "2" {
		t.Fatalf("reload line %v", l)
	}
	if s := x.serial(t); s != "2" {
		t.Fatalf("after HUP: serial %s, want 2", s)
	}
	if err := os.WriteFile(x.keyFile, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := x.d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	x.d.WaitLine(t, "TLS certificate not reloaded; the previous one keeps serving")
	if s := x.serial(t); s != "2" {
		t.Fatalf("after a bad pair: serial %s, want 2", s)
	}
	x.ca.issue(t, 3, x.certFile, x.keyFile)
	if l := x.d.WaitLine(t, "TLS certificate reloaded (files changed)"); l["serial"] != "3" {
		t.Fatalf("poll reload line %v", l)
	}
	if s := x.serial(t); s != "3" {
		t.Fatalf("after the files changed: serial %s, want 3", s)
	}
}

// TestTLSFlagErrors: the TLS flags' mistakes are one-line usage errors.
func TestTLSFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls", "127.0.0.1:0"}, "--tls needs --tls-cert FILE and --tls-key FILE"},
		{[]string{"--tls-cert", "c.pem", "127.0.0.1:0"}, "--tls-cert needs --tls ADDR"},
		{[]string{"--tls", ":853", "--tls-cert", "c", "--tls-key", "k", ":853"}, "address :853 is given both plain and as --tls"},
		{[]string{"--tls", ":853", "--tls", ":853", "--tls-cert", "c", "--tls-key", "k"}, "--tls :853 is given twice"},
		{[]string{"--tls", "localhost:853", "--tls-cert", "c", "--tls-key", "k"}, "is not an IP address"},
		{[]string{"--tls", ":853", "--tls-cert", "c", "--tls-key", "k", "--tls-handshake-timeout", "0s"}, "--tls-handshake-timeout 0s: must be positive"},
		{[]string{"--tls", ":853", "--tls-cert", "c", "--tls-key", "k", "--tls-ticket-rotation", "10ms"}, "--tls-ticket-rotation 10ms: must be at least 1s"},
		{[]string{"--tls-ticket-rotation", "1h", "127.0.0.1:0"}, "--tls-ticket-rotation needs --tls ADDR"},
	} {
		var stdout, stderr strings.Builder
		if code := run(c.args, &stdout, &stderr, nil); code != exitUsage || !strings.Contains(stderr.String(), c.want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, %q; want exit 2 and one line with %q", c.args, code, stderr.String(), c.want)
		}
	}
	// A pair that does not load: a runtime error naming the files.
	dir := t.TempDir()
	code, stderr := runOnce(t, nil, "--tls", "127.0.0.2:0", "--tls-cert", filepath.Join(dir, "none.pem"), "--tls-key", filepath.Join(dir, "none.key"))
	assertOneLine(t, stderr, "TLS certificate", "none.pem")
	if code != exitRuntime {
		t.Errorf("missing pair: exit %d, want 1", code)
	}
}

// dotQuery asks the SOA of example.com over a new TLS connection with
// Go's client and miekg/dns framing; an error is any failure on the way.
func (x *dotDaemon) dotQuery() error {
	_, err := x.dotWith(&tls.Config{RootCAs: x.ca.pool, NextProtos: []string{"dot"}})
	return err
}

// dotWith is dotQuery with the client's Config cc; it returns the
// connection's state.
func (x *dotDaemon) dotWith(cc *tls.Config) (tls.ConnectionState, error) {
	c, err := mdns.DialTimeoutWithTLS("tcp-tls", x.tls.String(), cc, testkit.WaitTimeout)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testkit.WaitTimeout))
	q := new(mdns.Msg)
	q.SetQuestion("example.com.", mdns.TypeSOA)
	if err := c.WriteMsg(q); err != nil {
		return tls.ConnectionState{}, err
	}
	r, err := c.ReadMsg()
	cs := c.Conn.(*tls.Conn).ConnectionState()
	if err != nil {
		return cs, err
	}
	if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 {
		return cs, fmt.Errorf("answer %v", r)
	}
	return cs, nil
}

// TestDoTUpgradeHandsOverTLS: through upgrades (USR2), the TLS listeners
// go to the new process like the plain ones, and DNS over TLS queries
// asked all along are all answered.
func TestDoTUpgradeHandsOverTLS(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "shardd.pid")
	x := startDoT(t, "--pidfile", pidfile)
	up := testkit.NewUpgrades(t, pidfile)
	var ok, failed atomic.Uint64
	var firstErr atomic.Value
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := x.dotQuery(); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			} else {
				ok.Add(1)
			}
		}
	}()
	waitAnswers := func(what string) {
		from := ok.Load()
		testkit.PollFor(t, what, testkit.WaitTimeout, func() bool { return ok.Load() >= from+5 || failed.Load() > 0 })
	}
	waitAnswers("answers before the upgrades")
	const upgrades = 3
	for i := 0; i < upgrades; i++ {
		up.Upgrade(t)
		waitAnswers(fmt.Sprintf("answers after upgrade %d", i+1))
	}
	close(stop)
	<-done
	up.Last()
	if failed.Load() != 0 || ok.Load() < 5*(upgrades+1) {
		t.Fatalf("DNS over TLS through %d upgrades: %d answered, %d failed (first: %v)\n%s", upgrades, ok.Load(), failed.Load(), firstErr.Load(), x.d.Stderr)
	}
	// The old process logs its hand-over after the new one wrote the pidfile.
	testkit.PollFor(t, "every hand-over logged", testkit.WaitTimeout, func() bool {
		return strings.Count(x.d.Stderr.String(), "upgrade handed over") == upgrades
	})
	// Every process's TLS shards summed up their handshakes as they exited.
	summed := 0.0
	for _, line := range strings.Split(x.d.Stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "shard summary" && m["proto"] == "tls" {
			hs, _ := m["tls_handshakes"].(map[string]any)
			ok, _ := hs["ok"].(float64)
			summed += ok
		}
	}
	if summed == 0 || summed > float64(ok.Load()) {
		t.Errorf("the exited processes' TLS summaries count %v handshakes ok, want 1..%d", summed, ok.Load())
	}
	if strings.Contains(x.d.Stderr.String(), "inherited sockets no shard uses were closed") {
		t.Fatalf("a TLS listener was not taken over:\n%s", x.d.Stderr)
	}
	t.Logf("%d DNS over TLS queries answered through %d upgrades", ok.Load(), upgrades)
}

// TestSyslogOverTLS: RFC 5425 (octet-counted frames inside TLS) into
// --handler syslog over --tls: every message exactly once in the sink.
func TestSyslogOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	certFile, keyFile, sink := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "out.ndjson")
	ca.issue(t, 1, certFile, keyFile)
	d := startDaemon(t, "--handler", "syslog", "--sink", sink, "--shards", "2", "--metrics", "127.0.0.1:0",
		"--tls-cert", certFile, "--tls-key", keyFile, "--tls", "127.0.0.2:0")
	to := d.WaitLine(t, "listening")["bound"].(string)
	metrics := d.WaitLine(t, "serving metrics")["addr"].(string)
	const conns, perConn = 4, 50
	for c := 0; c < conns; c++ {
		tc, err := tls.DialWithDialer(&net.Dialer{Timeout: testkit.WaitTimeout}, "tcp", to, &tls.Config{RootCAs: ca.pool})
		if err != nil {
			t.Fatal(err)
		}
		var stream strings.Builder
		for i := 0; i < perConn; i++ {
			msg := fmt.Sprintf("<13>1 2026-11-25T12:00:00Z host app - - - message %d-%d", c, i)
			fmt.Fprintf(&stream, "%d %s", len(msg), msg)
		}
		_ = tc.SetDeadline(time.Now().Add(testkit.WaitTimeout))
		if _, err := tc.Write([]byte(stream.String())); err != nil {
			t.Fatal(err)
		}
		tc.Close()
	}
	waitSyslogMetric(t, metrics, "shardd_tcp_closed_total", func(v float64) bool { return v == conns })
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr)
	}
	seen := map[string]int{}
	for _, r := range testkit.ReadNDJSON(t, sink) {
		m, _ := r["message"].(string)
		seen[m]++
	}
	for c := 0; c < conns; c++ {
		for i := 0; i < perConn; i++ {
			if n := seen[fmt.Sprintf("message %d-%d", c, i)]; n != 1 {
				t.Errorf("message %d-%d in the sink %d times, want once", c, i, n)
			}
		}
	}
	if len(seen) != conns*perConn {
		t.Errorf("%d distinct records, want %d", len(seen), conns*perConn)
	}
}

// clientCert is a client certificate for cn signed by ca.
func (ca *testCA) clientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key := mustKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: cn, Organization: []string{"shardd tests"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestSyslogMutualTLS: with --tls-client-ca, a client without a
// certificate, or with one from another CA, is refused (counted as
// bad_certificate) and logs nothing; a client with one gets its subject
// in every record as tls_peer.
func TestSyslogMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	other := newTestCA(t, t.TempDir())
	certFile, keyFile, sink := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "out.ndjson")
	ca.issue(t, 1, certFile, keyFile)
	d := startDaemon(t, "--handler", "syslog", "--sink", sink, "--shards", "2", "--metrics", "127.0.0.1:0",
		"--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", ca.caFile, "--tls", "127.0.0.2:0")
	to := d.WaitLine(t, "listening")["bound"].(string)
	metricsURL := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	send := func(certs []tls.Certificate, msg string) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: testkit.WaitTimeout}, "tcp", to, &tls.Config{RootCAs: ca.pool, Certificates: certs})
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(testkit.WaitTimeout))
		if _, err := fmt.Fprintf(c, "%d %s", len(msg), msg); err != nil {
			return err
		}
		// TLS 1.3 clients learn of a refused certificate on their first
		// read: wait for the server's close (EOF) or its alert.
		_ = c.CloseWrite()
		_, err = c.Read(make([]byte, 1))
		if err == io.EOF {
			return nil
		}
		return err
	}
	if err := send(nil, "<13>1 2026-11-25T12:00:00Z host app - - - anonymous"); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	if err := send([]tls.Certificate{other.clientCert(t, "stranger")}, "<13>1 2026-11-25T12:00:00Z host app - - - stranger"); err == nil {
		t.Fatal("a client with another CA's certificate was served")
	}
	if err := send([]tls.Certificate{ca.clientCert(t, "client1")}, "<13>1 2026-11-25T12:00:00Z host app - - - trusted"); err != nil {
		t.Fatalf("the trusted client: %v", err)
	}
	testkit.PollFor(t, "the handshakes counted", testkit.WaitTimeout, func() bool {
		text := testkit.Scrape(t, metricsURL)
		return testkit.MetricSum(text, "shardd_tls_handshakes_total", `result="bad_certificate"`) == 2 &&
			testkit.MetricSum(text, "shardd_tls_handshakes_total", `result="ok"`) == 1 &&
			testkit.MetricSum(text, "shardd_tcp_closed_total", "") == 3
	})
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr)
	}
	recs := testkit.ReadNDJSON(t, sink)
	if len(recs) != 1 || recs[0]["message"] != "trusted" || recs[0]["tls_peer"] != "CN=client1,O=shardd tests" || recs[0]["proto"] != "tcp" {
		t.Fatalf("records %v; want the trusted one alone, with tls_peer", recs)
	}
}
