package shard

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCAStoreVerifiesAsCryptoTLS: the client-CA check done in
// VerifyConnection (so the pool can be swapped by a reload) takes and
// refuses the same client chains as crypto/tls's own
// RequireAndVerifyClientCert with the same CAs: an intermediate sent or
// not, extended key usages of the leaf and of the intermediate, validity
// times, an unknown CA. Each chain is shown to both; each must agree, and
// the expected outcome is checked so the test cannot pass by both failing.
func TestCAStoreVerifiesAsCryptoTLS(t *testing.T) {
	now := time.Now()
	ca := newClientCA(t, "root")
	other := newClientCA(t, "other")
	inter, interKey := signCert(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "intermediate"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, ca.cert, ca.key)
	interServer, interServerKey := signCert(t, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "intermediate for servers"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca.cert, ca.key)
	leaf := func(parent *x509.Certificate, parentKey any, eku []x509.ExtKeyUsage, from, to time.Time, chain ...*x509.Certificate) tls.Certificate {
		c, k := signCert(t, &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "client"},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: eku, NotBefore: from, NotAfter: to}, parent, parentKey)
		tc := tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: k}
		for _, x := range chain {
			tc.Certificate = append(tc.Certificate, x.Raw)
		}
		return tc
	}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	valid, until := now.Add(-time.Hour), now.Add(time.Hour)
	cases := []struct {
		name string
		cert tls.Certificate
		ok   bool
	}{
		{"signed by the CA", leaf(ca.cert, ca.key, client, valid, until), true},
		{"no extended key usage", leaf(ca.cert, ca.key, nil, valid, until), true},
		{"any extended key usage", leaf(ca.cert, ca.key, []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, valid, until), true},
		{"through an intermediate it sends", leaf(inter, interKey, client, valid, until, inter), true},
		{"through an intermediate it does not send", leaf(inter, interKey, client, valid, until), false},
		{"server authentication only", leaf(ca.cert, ca.key, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, valid, until), false},
		{"through an intermediate for servers only", leaf(interServer, interServerKey, client, valid, until, interServer), false},
		{"expired", leaf(ca.cert, ca.key, client, now.Add(-2*time.Hour), now.Add(-time.Hour)), false},
		{"not valid yet", leaf(ca.cert, ca.key, client, now.Add(time.Hour), now.Add(2*time.Hour)), false},
		{"signed by another CA", leaf(other.cert, other.key, client, valid, until), false},
		{"self-signed", func() tls.Certificate {
			c, k := signCert(t, &x509.Certificate{SerialNumber: big.NewInt(5), Subject: pkix.Name{CommonName: "me"}, ExtKeyUsage: client}, nil, nil)
			return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: k}
		}(), false},
	}

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	cas, err := LoadClientCAs(caFile)
	if err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey := signCert(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "server"}, DNSNames: []string{"server"}}, nil, nil)
	serverPair := tls.Certificate{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey}
	ours := &tls.Config{Certificates: []tls.Certificate{serverPair}}
	cas.Require(ours)
	theirs := &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientCAs: x509.NewCertPool(), ClientAuth: tls.RequireAndVerifyClientCert}
	theirs.ClientCAs.AddCert(ca.cert)

	for _, tc := range cases {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			cc := &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{tc.cert}, MinVersion: v, MaxVersion: v}
			got, _ := handshakeErr(t, ours, cc)
			want, _ := handshakeErr(t, theirs, cc)
			if (got == nil) != (want == nil) || (got == nil) != tc.ok {
				t.Errorf("%s (TLS %x): CAStore %v, crypto/tls %v; want taken %v by both", tc.name, v, got, want, tc.ok)
			}
		}
	}

	// A resumed session is checked too: with the CA dropped by a reload, a
	// client that resumed before is refused.
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil || cas.Reload() != nil {
			t.Fatal("reloading the CA")
		}
		cc := &tls.Config{InsecureSkipVerify: true, ServerName: "server", Certificates: []tls.Certificate{cases[0].cert}, MinVersion: v, MaxVersion: v,
			ClientSessionCache: tls.NewLRUClientSessionCache(1)}
		if err, _ := handshakeErr(t, ours, cc); err != nil {
			t.Fatalf("TLS %x: first handshake: %v", v, err)
		}
		if err, resumed := handshakeErr(t, ours, cc); err != nil || !resumed {
			t.Fatalf("TLS %x: second handshake: %v, resumed %v; want resumed", v, err, resumed)
		}
		if err := os.WriteFile(caFile, other.pem, 0o600); err != nil || cas.Reload() != nil {
			t.Fatal("reloading the other CA")
		}
		if err, _ := handshakeErr(t, ours, cc); err == nil {
			t.Errorf("TLS %x: the session resumed with its CA dropped", v)
		}
	}
}

// handshakeErr runs a handshake between a server with srv and a client
// with cc over loopback TCP and returns the server's error and whether the
// client resumed a session.
func handshakeErr(t *testing.T, srv, cc *tls.Config) (err error, resumed bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		b, err := net.DialTimeout("tcp", ln.Addr().String(), waitTimeout)
		if err != nil {
			return
		}
		defer b.Close()
		_ = b.SetDeadline(time.Now().Add(waitTimeout))
		c := tls.Client(b, cc)
		if c.Handshake() == nil {
			resumed = c.ConnectionState().DidResume
			_, _ = c.Read(make([]byte, 1)) // TLS 1.3: the server's verdict and tickets come after the client's Finished
		}
	}()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = a.SetDeadline(time.Now().Add(waitTimeout))
	err = tls.Server(a, srv).Handshake()
	_ = a.Close()
	<-done
	return err, resumed
}
