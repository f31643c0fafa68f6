package shard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shardd/shardd/metrics"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 with serial
// and its key to dir/cert.pem and dir/key.pem, and returns the pool that
// trusts it.
func selfSigned(t *testing.T, dir string, serial int64) *x509.CertPool {
	t.Helper()
	return selfSignedUntil(t, dir, serial, time.Now().Add(24*time.Hour))
}

// selfSignedUntil is selfSigned with the certificate valid until notAfter.
func selfSignedUntil(t *testing.T, dir string, serial int64, notAfter time.Time) *x509.CertPool {
	t.Helper()
	cert, key := signCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "shard test"},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, nil, nil)
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, blk := range map[string]*pem.Block{"cert.pem": {Type: "CERTIFICATE", Bytes: cert.Raw}, "key.pem": {Type: "PRIVATE KEY", Bytes: kb}} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// tlsGroup serves echo over TLS on a loopback port with a fresh
// certificate; it returns the group, the store and the pool trusting it.
func tlsGroup(t *testing.T, cfg Config) (*Group, *CertStore, *x509.CertPool, string) {
	t.Helper()
	dir := t.TempDir()
	pool := selfSigned(t, dir, 1)
	store, err := LoadCerts(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr, cfg.TLS = "127.0.0.1:0", ServerTLS(store, "dot")
	if cfg.Shards == 0 {
		cfg.Shards = 2
	}
	g := startGroup(t, cfg)
	return g, store, pool, dir
}

// echoOverTLS dials g with cc, sends msg and returns what came back and
// the connection's state.
func echoOverTLS(t *testing.T, g *Group, cc *tls.Config, msg string) (string, tls.ConnectionState) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: waitTimeout}, "tcp", tcpAddr(g), cc)
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	return string(buf), c.ConnectionState()
}

// tlsCounts adds up the TLS and close counters of g's shards.
func tlsCounts(g *Group) (c metrics.Counts) {
	for _, s := range g.Stats(nil) {
		if s.Proto != "tls" {
			continue
		}
		for i, n := range s.TLSHandshakes {
			c.TLSHandshakes[i] += n
		}
		c.TLSResumed += s.TLSResumed
		for i, n := range s.TLSVersions {
			c.TLSVersions[i] += n
		}
		for i, n := range s.Closed {
			c.Closed[i] += n
		}
	}
	return c
}

// TestTLSServesFramesInsideTLS: echo over TLS 1.2 and 1.3, ALPN "dot"
// negotiated, a resumed session counted, and the handshakes counted by
// result and version on the "tls" shards.
func TestTLSServesFramesInsideTLS(t *testing.T) {
	g, _, pool, _ := tlsGroup(t, Config{})
	if in := g.Info(); !in.TLS || in.TCPShape != TCPShapeGoroutines || in.UDP {
		t.Fatalf("Info: TLS %v shape %v UDP %v; want a TLS group on goroutines, TCP only", in.TLS, in.TCPShape, in.UDP)
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		got, cs := echoOverTLS(t, g, &tls.Config{RootCAs: pool, MinVersion: v, MaxVersion: v, NextProtos: []string{"dot"}}, "hello")
		if got != "hello" || cs.Version != v || cs.NegotiatedProtocol != "dot" {
			t.Fatalf("version %x: echo %q, version %x, ALPN %q", v, got, cs.Version, cs.NegotiatedProtocol)
		}
	}
	cache := tls.NewLRUClientSessionCache(4)
	cc := &tls.Config{RootCAs: pool, ClientSessionCache: cache}
	echoOverTLS(t, g, cc, "first")
	if _, cs := echoOverTLS(t, g, cc, "again"); !cs.DidResume {
		t.Fatal("the second connection with a session cache did not resume")
	}
	waitFor(t, "the handshakes counted", func() bool {
		c := tlsCounts(g)
		return c.TLSHandshakes[metrics.TLSOK] == 4 && c.TLSResumed == 1 && c.TLSVersions[metrics.TLS12] == 1 && c.TLSVersions[metrics.TLS13] == 3
	})
}

// TestTLSRefusesOldVersionsAndOtherALPN: a TLS 1.1 client and a client
// offering only another ALPN protocol get no session; both count as
// protocol.
func TestTLSRefusesOldVersionsAndOtherALPN(t *testing.T) {
	g, _, pool, _ := tlsGroup(t, Config{})
	for _, cc := range []*tls.Config{
		{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
		{RootCAs: pool, NextProtos: []string{"h2"}},
	} {
		c, err := tls.Dial("tcp", tcpAddr(g), cc)
		if err == nil {
			c.Close()
			t.Fatalf("handshake with %+v succeeded", cc.NextProtos)
		}
	}
	waitFor(t, "two protocol failures counted", func() bool {
		c := tlsCounts(g)
		return c.TLSHandshakes[metrics.TLSProtocol] == 2 && c.TLSHandshakes[metrics.TLSOK] == 0
	})
}

// TestTLSHandshakeTimeout: a client that connects and sends nothing is cut
// at the handshake timeout (not the idle timeout), counted as timeout.
func TestTLSHandshakeTimeout(t *testing.T) {
	g, _, _, _ := tlsGroup(t, Config{TLSHandshakeTimeout: 300 * time.Millisecond, IdleTimeout: time.Hour})
	c := dialTCP(t, tcpAddr(g))
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d bytes, %v; want the server to close", n, err)
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Fatalf("closed after %v, before the 300ms handshake timeout", took)
	}
	waitFor(t, "the timeout counted", func() bool {
		c := tlsCounts(g)
		return c.TLSHandshakes[metrics.TLSTimeout] == 1 && c.Closed[metrics.CloseIdle] == 1
	})
}

// TestCertStoreReload: a new pair is served from the next handshake on; a
// bad pair keeps the old one serving, and Watch reports each outcome once.
func TestCertStoreReload(t *testing.T) {
	g, store, pool1, dir := tlsGroup(t, Config{})
	serialSeen := func(pool *x509.CertPool) string {
		_, cs := echoOverTLS(t, g, &tls.Config{RootCAs: pool}, "x")
		return cs.PeerCertificates[0].SerialNumber.String()
	}
	if s := serialSeen(pool1); s != "1" {
		t.Fatalf("serial %s, want 1", s)
	}
	pool2 := selfSigned(t, dir, 2)
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := serialSeen(pool2); s != "2" || store.Serial() != "2" {
		t.Fatalf("after the reload: serial %s (store %s), want 2", s, store.Serial())
	}
	// A key that does not match the certificate: refused, 2 keeps serving.
	other := t.TempDir()
	selfSigned(t, other, 3)
	key, _ := os.ReadFile(filepath.Join(other, "key.pem"))
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := store.Reload(); err == nil {
		t.Fatal("Reload took a key that does not match the certificate")
	}
	if s := serialSeen(pool2); s != "2" {
		t.Fatalf("after a bad pair: serial %s, want 2 still", s)
	}
	// Watch: the bad pair is reported once, then a good one loads.
	reports := make(chan error, 8)
	stop := make(chan struct{})
	defer close(stop)
	go store.Watch(20*time.Millisecond, stop, func(err error) { reports <- err })
	// The key file changed since the last good load: Watch sees it.
	if err := <-reports; err == nil {
		t.Fatal("Watch reported the mismatched pair as loaded")
	}
	pool4 := selfSigned(t, dir, 4)
	if err := <-reports; err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if s := serialSeen(pool4); s != "4" {
		t.Fatalf("after Watch: serial %s, want 4", s)
	}
	select {
	case err := <-reports:
		t.Fatalf("a second report without a change: %v", err)
	default:
	}
}

// TestTLSConfigChecks: TLS refuses UDP, the event loop and no certificate.
func TestTLSConfigChecks(t *testing.T) {
	dir := t.TempDir()
	selfSigned(t, dir, 1)
	store, err := LoadCerts(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{Addr: ":0", TLS: ServerTLS(store), UDP: true, TCP: true}, "TLS"},
		{Config{Addr: ":0", TLS: ServerTLS(store), TCPShape: TCPShapeLoop}, "TCPShape"},
		{Config{Addr: ":0", TLS: &tls.Config{}}, "TLS"},
		{Config{Addr: ":0", TLS: ServerTLS(store), TLSHandshakeTimeout: -1}, "TLSHandshakeTimeout"},
	} {
		var ce *ConfigError
		if err := c.cfg.Validate(); !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%+v: %v; want a ConfigError on %s", c.cfg, err, c.field)
		}
	}
	if _, err := LoadCerts(filepath.Join(dir, "none.pem"), filepath.Join(dir, "key.pem")); err == nil {
		t.Error("LoadCerts took a missing file")
	}
}

// TestTLSStopLetsAHandshakeFinish: a connection accepted before a graceful
// stop (an upgrade's hand-over) may still handshake and be answered; one
// that stalls in its handshake holds the stop for tlsStopGrace only.
func TestTLSStopLetsAHandshakeFinish(t *testing.T) {
	dir := t.TempDir()
	pool := selfSigned(t, dir, 1)
	store, err := LoadCerts(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	g, served := serveGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TLS: ServerTLS(store), TLSHandshakeTimeout: time.Hour})
	late := dialTCP(t, tcpAddr(g))    // handshakes after the stop began
	stalled := dialTCP(t, tcpAddr(g)) // never handshakes
	waitFor(t, "both accepted", func() bool { return sumAccepted(g) == 2 })
	stopped := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		stopped <- g.Shutdown(ctx)
	}()
	waitFor(t, "the stop begun", func() bool { return g.tcp[0].stopping.Load() })
	c := tls.Client(late, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := c.Write([]byte("late")); err != nil {
		t.Fatalf("handshake after the stop began: %v", err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "late" {
		t.Fatalf("echo after the stop began: %q, %v", buf, err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Shutdown: %v (a stalled handshake held the stop)", err)
	}
	<-served
	t.Logf("stop took %v with a stalled handshake (grace %v)", time.Since(start), tlsStopGrace)
	_ = stalled
	cnt := tlsCounts(g)
	if cnt.TLSHandshakes[metrics.TLSOK] != 1 || cnt.TLSHandshakes[metrics.TLSShutdown] != 1 || cnt.Closed[metrics.CloseShutdown] != 2 {
		t.Fatalf("handshakes %v, closed %v; want one ok and one cut by the stop, both closed by it", cnt.TLSHandshakes, cnt.Closed)
	}
}

// TestTLSMaxConnsEvictsAStalledHandshake: --max-conns counts connections
// in their handshake, and one stalled there is evicted for a new client.
func TestTLSMaxConnsEvictsAStalledHandshake(t *testing.T) {
	g, _, pool, _ := tlsGroup(t, Config{Shards: 1, MaxConns: 1, MaxConnsPerIP: 2, TLSHandshakeTimeout: time.Hour})
	stalled := dialTCP(t, tcpAddr(g))
	waitFor(t, "the stalled one accepted", func() bool { return sumAccepted(g) == 1 })
	// Evictable once it has been idle for evictIdle: retry until then.
	waitFor(t, "a new client served", func() bool {
		c, err := tls.Dial("tcp", tcpAddr(g), &tls.Config{RootCAs: pool})
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(waitTimeout))
		buf := make([]byte, 2)
		_, err = c.Write([]byte("hi"))
		if err == nil {
			_, err = io.ReadFull(c, buf)
		}
		return err == nil && string(buf) == "hi"
	})
	_ = stalled.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := stalled.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the stalled connection: %v; want it closed", err)
	}
	waitFor(t, "the eviction counted", func() bool { return tlsCounts(g).Closed[metrics.CloseEvicted] == 1 })
}

func sumAccepted(g *Group) (n uint64) {
	for _, s := range g.Stats(nil) {
		n += s.Accepted
	}
	return n
}

// TestTLSClientRefusesCertificate: clients that refuse the certificate
// (expired, another host name, a CA they do not trust) are counted as
// bad_certificate, and NotAfter tells the expiry.
func TestTLSClientRefusesCertificate(t *testing.T) {
	dir := t.TempDir()
	expiredAt := time.Now().Add(-time.Hour).Truncate(time.Second)
	pool := selfSignedUntil(t, dir, 1, expiredAt)
	store, err := LoadCerts(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !store.NotAfter().Equal(expiredAt) {
		t.Fatalf("NotAfter %v, want %v", store.NotAfter(), expiredAt)
	}
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TLS: ServerTLS(store)})
	fresh := selfSigned(t, t.TempDir(), 9) // a CA the server's certificate is not from
	for _, cc := range []*tls.Config{
		{RootCAs: pool}, // expired
		{RootCAs: pool, ServerName: "other.test"}, // another host (and expired)
		{RootCAs: fresh}, // unknown authority
	} {
		if c, err := tls.Dial("tcp", tcpAddr(g), cc); err == nil {
			c.Close()
			t.Fatal("the client took the certificate")
		}
	}
	waitFor(t, "three refusals counted", func() bool {
		return tlsCounts(g).TLSHandshakes[metrics.TLSBadCertificate] == 3
	})
}
