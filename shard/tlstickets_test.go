package shard

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardd/shardd/metrics"
)

// resumedOn dials g with cc and reports whether the session resumed and
// which shard counted the handshake (the one whose ok count grew).
func resumedOn(t *testing.T, g *Group, cc *tls.Config) (bool, int) {
	t.Helper()
	before := g.Stats(nil)
	_, cs := echoOverTLS(t, g, cc, "x")
	shard := -1
	waitFor(t, "the handshake counted", func() bool {
		for i, s := range g.Stats(nil) {
			if s.TLSHandshakes[metrics.TLSOK] > before[i].TLSHandshakes[metrics.TLSOK] {
				shard = i
				return true
			}
		}
		return false
	})
	return cs.DidResume, shard
}

// TestTLSTicketsResumeOnEveryShard: a ticket issued by one shard resumes
// on another (they share the keys), and each counts its own resumption.
func TestTLSTicketsResumeOnEveryShard(t *testing.T) {
	g, _, pool, _ := tlsGroup(t, Config{})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cc := &tls.Config{RootCAs: pool, MaxVersion: v, ClientSessionCache: tls.NewLRUClientSessionCache(8)}
		resumed, first := resumedOn(t, g, cc)
		if resumed {
			t.Fatal("the first connection resumed")
		}
		// Each new connection lands on a shard by the kernel's hash of
		// its ports: within 200 one lands on the other shard.
		other := false
		for i := 0; i < 200 && !other; i++ {
			resumed, on := resumedOn(t, g, cc)
			if !resumed {
				t.Fatalf("TLS %x: connection %d (shard %d) did not resume", v, i, on)
			}
			other = on != first
		}
		if !other {
			t.Fatalf("TLS %x: 200 connections all on shard %d", v, first)
		}
	}
	perShard := 0
	for _, s := range g.Stats(nil) {
		if s.TLSResumed > 0 {
			perShard++
		}
	}
	if perShard != 2 {
		t.Fatalf("resumptions counted on %d shards, want both", perShard)
	}
}

// TestTLSTicketRotationWindow: after one rotation a ticket issued before
// it still resumes (the previous key decrypts); after a second it does
// not (a full handshake, which succeeds).
func TestTLSTicketRotationWindow(t *testing.T) {
	_, store, pool, _ := tlsGroup(t, Config{Shards: 1})
	conf := ServerTLS(store)
	keys, err := NewTicketKeys(conf)
	if err != nil {
		t.Fatal(err)
	}
	g := startGroup(t, Config{Addr: "127.0.0.1:0", TLS: conf, Shards: 1})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		ticketed := func() *tls.Config { // a client holding a ticket of the current key
			cc := &tls.Config{RootCAs: pool, MaxVersion: v, ClientSessionCache: tls.NewLRUClientSessionCache(1)}
			if resumed, _ := resumedOn(t, g, cc); resumed {
				t.Fatal("the first connection resumed")
			}
			return cc
		}
		one, two := ticketed(), ticketed()
		if err := keys.Rotate(time.Now()); err != nil {
			t.Fatal(err)
		}
		if resumed, _ := resumedOn(t, g, one); !resumed {
			t.Fatalf("TLS %x: a ticket of the previous key did not resume", v)
		}
		if err := keys.Rotate(time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := keys.Rotate(time.Now()); err != nil {
			t.Fatal(err)
		}
		if resumed, _ := resumedOn(t, g, two); resumed {
			t.Fatalf("TLS %x: a ticket two keys old resumed", v)
		}
	}
}

// TestTicketKeysStateRestore: the keys State hands over make another
// Config resume the first one's tickets; a Config with keys of its own
// does not; and a State that does not parse is refused.
func TestTicketKeysStateRestore(t *testing.T) {
	_, store, pool, _ := tlsGroup(t, Config{Shards: 1})
	oldConf := ServerTLS(store)
	old, err := NewTicketKeys(oldConf)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Rotate(time.Now().Add(-time.Minute)); err != nil { // two keys to hand over
		t.Fatal(err)
	}
	g := startGroup(t, Config{Addr: "127.0.0.1:0", TLS: oldConf, Shards: 1})
	// The cache keys a session by ServerName: the same for every group.
	cc := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", ClientSessionCache: tls.NewLRUClientSessionCache(1)}
	resumedOn(t, g, cc)
	g.Close()

	try := func(restore func(*TicketKeys) error) bool {
		conf := ServerTLS(store)
		k, err := NewTicketKeys(conf)
		if err != nil {
			t.Fatal(err)
		}
		if err := restore(k); err != nil {
			t.Fatal(err)
		}
		g := startGroup(t, Config{Addr: "127.0.0.1:0", TLS: conf, Shards: 1})
		defer g.Close()
		resumed, _ := resumedOn(t, g, cc)
		return resumed
	}
	state := old.State()
	if !try(func(k *TicketKeys) error { return k.Restore(state) }) {
		t.Fatal("the restored keys did not resume the old ticket")
	}
	// The cache now holds a ticket of the restored (old) keys.
	if try(func(*TicketKeys) error { return nil }) {
		t.Fatal("a ticket resumed with other keys")
	}
	k, _ := NewTicketKeys(ServerTLS(store))
	if err := k.Restore(state); err != nil || !k.Made().Equal(old.Made()) {
		t.Fatalf("Restore: %v, made %v, want %v", err, k.Made(), old.Made())
	}
	for _, bad := range [][]byte{nil, state[:len(state)-1], append(bytes.Clone(state), 0), []byte("shardd-tk1\x00\x00\x00\x00\x00\x00\x00\x00\x00")} {
		if err := k.Restore(bad); err == nil {
			t.Errorf("Restore(%q) took it", bad)
		}
	}
}

// TestTicketKeysRunRotates: Run makes a new key once the interval since
// the newest one is over, and stops when told.
func TestTicketKeysRunRotates(t *testing.T) {
	k, err := NewTicketKeys(&tls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	first := k.State()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); k.Run(50*time.Millisecond, stop, func(err error) { t.Error(err) }) }()
	waitFor(t, "a rotation", func() bool { return !bytes.Equal(k.State(), first) })
	close(stop)
	<-done
	keys, _, err := parseTicketState(k.State())
	if err != nil || len(keys) != ticketKeysKept {
		t.Fatalf("after a rotation: %d keys (%v), want %d", len(keys), err, ticketKeysKept)
	}
}

func FuzzParseTicketState(f *testing.F) {
	k, _ := NewTicketKeys(&tls.Config{})
	f.Add(k.State())
	_ = k.Rotate(time.Now())
	f.Add(k.State())
	f.Add([]byte("shardd-tk1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, made, err := parseTicketState(b)
		if err != nil {
			return
		}
		k := &TicketKeys{conf: &tls.Config{}}
		k.set(keys, made)
		if got := k.State(); !bytes.Equal(got, b) {
			t.Fatalf("State %x after parsing %x", got, b)
		}
	})
}

// TestTLSCipherCounted: each connection's suite is counted under its own
// label; every suite the server offers for TLS 1.2 has one.
func TestTLSCipherCounted(t *testing.T) {
	for _, id := range TLS12Suites {
		if metrics.TLSCipherOf(id) == metrics.TLSCipherOther {
			t.Errorf("suite %s has no label of its own", tls.CipherSuiteName(id))
		}
	}
	g, _, pool, _ := tlsGroup(t, Config{})
	chacha := tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
	echoOverTLS(t, g, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{chacha}}, "x")
	_, cs := echoOverTLS(t, g, &tls.Config{RootCAs: pool}, "x")
	waitFor(t, "two suites counted", func() bool {
		var n [metrics.TLSCiphersN]uint64
		for _, s := range g.Stats(nil) {
			for i, v := range s.TLSCiphers {
				n[i] += v
			}
		}
		return n[metrics.TLSCipherOf(chacha)] == 1 && n[metrics.TLSCipherOf(cs.CipherSuite)] == 1 && n[metrics.TLSCipherOther] == 0
	})
	if name := metrics.TLSCipherOf(chacha).String(); name != "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" {
		t.Errorf("label %q", name)
	}
}

// TestCAStoreReload: a client certificate of a CA added by a reload is
// taken from the next handshake on; one of a CA dropped is refused, even
// resuming a session; a file with no certificate keeps the pool in use,
// and Watch reports it once.
func TestCAStoreReload(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	caA, caB := newClientCA(t, "A"), newClientCA(t, "B")
	write := func(data ...[]byte) {
		if err := os.WriteFile(caFile, bytes.Join(data, nil), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(caA.pem)
	cas, err := LoadClientCAs(caFile)
	if err != nil {
		t.Fatal(err)
	}
	_, store, pool, _ := tlsGroup(t, Config{Shards: 1})
	conf := ServerTLS(store)
	cas.Require(conf)
	g := startGroup(t, Config{Addr: "127.0.0.1:0", TLS: conf, Shards: 1})
	dial := func(cc *tls.Config) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: waitTimeout}, "tcp", tcpAddr(g), cc)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(waitTimeout))
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		_, err = c.Read(make([]byte, 1)) // TLS 1.3: a refusal shows here
		return err
	}
	fromA := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{caA.client(t)}, ClientSessionCache: tls.NewLRUClientSessionCache(1)}
	fromB := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{caB.client(t)}}
	if err := dial(fromA); err != nil {
		t.Fatalf("A's client: %v", err)
	}
	if err := dial(fromB); err == nil {
		t.Fatal("B's client was served before B was added")
	}
	write(caB.pem)
	if err := cas.Reload(); err != nil || cas.Certificates() != 1 {
		t.Fatalf("Reload: %v, %d certificates", err, cas.Certificates())
	}
	if err := dial(fromB); err != nil {
		t.Fatalf("B's client after the reload: %v", err)
	}
	if err := dial(fromA); err == nil { // a resumption attempt: A's session is cached
		t.Fatal("A's client resumed after A was dropped")
	}
	write([]byte("not a certificate\n"))
	if err := cas.Reload(); err == nil {
		t.Fatal("Reload took a file with no certificate")
	}
	if err := dial(fromB); err != nil {
		t.Fatalf("B's client after a bad file: %v", err)
	}
	reports := make(chan error, 8)
	stop := make(chan struct{})
	defer close(stop)
	go cas.Watch(20*time.Millisecond, stop, func(err error) { reports <- err })
	if err := <-reports; err == nil {
		t.Fatal("Watch reported the bad file as loaded")
	}
	write(caA.pem, caB.pem)
	if err := <-reports; err != nil || cas.Certificates() != 2 {
		t.Fatalf("Watch: %v, %d certificates", err, cas.Certificates())
	}
	if err := dial(fromA); err != nil {
		t.Fatalf("A's client after A came back: %v", err)
	}
	select {
	case err := <-reports:
		t.Fatalf("a second report without a change: %v", err)
	default:
	}
	waitFor(t, "the refusals counted", func() bool {
		return tlsCounts(g).TLSHandshakes[metrics.TLSBadCertificate] == 2
	})
}

// clientCA is a CA that signs client certificates.
type clientCA struct {
	cert *x509.Certificate
	key  any
	pem  []byte
}

func newClientCA(t *testing.T, name string) *clientCA {
	t.Helper()
	cert, key := signCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(100), Subject: pkix.Name{CommonName: "client CA " + name},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	return &clientCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})}
}

// client is a client certificate signed by ca.
func (ca *clientCA) client(t *testing.T) tls.Certificate {
	t.Helper()
	cert, key := signCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "client of " + ca.cert.Subject.CommonName},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca.cert, ca.key)
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key}
}

// signCert makes tmpl with a new key, signed by parent's key (self-signed
// when parent is nil); without dates, valid from an hour ago for a day.
func signCert(t *testing.T, tmpl, parent *x509.Certificate, parentKey any) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestWatchFilesReportsOnce: a change that does not load is reported once
// however many polls see it, then a load that works is reported.
func TestWatchFilesReportsOnce(t *testing.T) {
	var polls atomic.Int64
	var loads atomic.Bool // what reload returns: false, a failure
	reports := make(chan error, 16)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchFiles(time.Millisecond, stop, func() bool { polls.Add(1); return true }, func() error {
			if loads.Load() {
				return nil
			}
			return errors.New("bad file")
		}, func(err error) {
			select {
			case reports <- err:
			default: // the first ones are what the test reads
			}
		})
	}()
	waitFor(t, "ten polls of the bad file", func() bool { return polls.Load() >= 10 })
	loads.Store(true)
	waitFor(t, "the good load reported", func() bool { return len(reports) >= 2 })
	close(stop)
	<-done
	if err := <-reports; err == nil {
		t.Fatal("first report: want the bad file's error")
	}
	if err := <-reports; err != nil {
		t.Fatalf("second report %v: want the good load (the error once only)", err)
	}
}
