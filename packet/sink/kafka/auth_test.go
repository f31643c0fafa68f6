package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// selfSigned returns a certificate for 127.0.0.1 and the path of its PEM
// file (the CA file a client trusts).
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}

// TestTLSAndSCRAM: brokers that take only TLS and SASL/SCRAM-SHA-256: the
// sink with the CA file and the password produces every line, read back
// over TLS and SCRAM.
func TestTLSAndSCRAM(t *testing.T) {
	cert, caFile := selfSigned(t)
	c := newCluster(t, kfake.SeedTopics(2, topic), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "shardd", "s3cret"))
	defer c.Close()
	tlsCfg, err := TLSConfig(caFile)
	if err != nil {
		t.Fatal(err)
	}
	mech, _ := SASL("scram-sha-256", "shardd", "s3cret")
	s := openSink(t, c.ListenAddrs(), func(c *Config) { c.TLS, c.SASL = tlsCfg, mech })
	sendLines(s, 2, 3, 0, 200)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := totals(s); st.Written != 600 {
		t.Fatalf("written %d of 600 (dropped %v)", st.Written, st.Dropped)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DialTLSConfig(tlsCfg), kgo.SASL(mech),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := 0
	for n < 600 && ctx.Err() == nil {
		n += cl.PollFetches(ctx).NumRecords()
	}
	if n != 600 {
		t.Fatalf("consumed %d of 600", n)
	}
}

// TestSASLRefused: a broker that answers the SASL authentication with
// SASL_AUTHENTICATION_FAILED (as Kafka does for a wrong password; kfake
// itself just closes the connection, so the answer is a control here):
// Open fails and says why.
func TestSASLRefused(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, topic), kfake.EnableSASL(), kfake.Superuser("PLAIN", "shardd", "s3cret"))
	defer c.Close()
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.(*kmsg.SASLAuthenticateRequest).ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "Authentication failed: Invalid username or password"
		resp.ErrorMessage = &msg
		return resp, nil, true
	})
	mech, _ := SASL("plain", "shardd", "wrong")
	_, err := Open(Config{Brokers: c.ListenAddrs(), Topic: topic, SASL: mech, StartTimeout: 10 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "refused the client") || !strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED") {
		t.Fatalf("Open with a refused password: %v", err)
	}
}

func TestTLSConfigAndSecret(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	_ = os.WriteFile(bad, []byte("not pem"), 0o600)
	if _, err := TLSConfig(bad); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("TLSConfig(not pem): %v", err)
	}
	if _, err := TLSConfig(filepath.Join(dir, "none")); err == nil {
		t.Error("TLSConfig(missing file): no error")
	}
	pw := filepath.Join(dir, "pw")
	_ = os.WriteFile(pw, []byte("p@ss word\r\nignored\n"), 0o600)
	if s, err := ReadSecret(pw); err != nil || s != "p@ss word" {
		t.Errorf("ReadSecret = %q, %v", s, err)
	}
	for _, m := range SASLMechanisms {
		if _, ok := SASL(m, "u", "p"); !ok {
			t.Errorf("SASL(%s) refused", m)
		}
	}
	if _, ok := SASL("gssapi", "u", "p"); ok {
		t.Error("SASL(gssapi) taken")
	}
}
