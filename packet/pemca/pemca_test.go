package pemca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newCA returns a self-signed CA certificate named cn, as PEM.
func newCA(t testing.TB, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestParseBundle: every certificate of a bundle, in order, with the
// text some bundles carry between blocks ignored.
func TestParseBundle(t *testing.T) {
	a, b := newCA(t, "A"), newCA(t, "B")
	data := bytes.Join([][]byte{[]byte("# Issuer: CN=A\n"), a, []byte("\nsubject=CN=B\n"), b, []byte("trailing text\n")}, nil)
	certs, err := Parse(data)
	if err != nil || len(certs) != 2 || certs[0].Subject.CommonName != "A" || certs[1].Subject.CommonName != "B" {
		t.Fatalf("Parse = %d certificates, %v; want A and B", len(certs), err)
	}
}

// TestParseRefuses: whatever in a bundle is not a certificate that
// parses is an error naming its block, including the cases where
// x509.CertPool.AppendCertsFromPEM reports success (it skips the block).
func TestParseRefuses(t *testing.T) {
	a, b := newCA(t, "A"), newCA(t, "B")
	blk, _ := pem.Decode(b)
	cut := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes[:len(blk.Bytes)/2]})
	badBase64 := bytes.Replace(b, []byte("\n"), []byte("\n!"), 2) // a stray character in the body
	noEnd := b[:bytes.Index(b, []byte("-----END"))]
	typo := bytes.ReplaceAll(b, []byte("CERTIFICATE"), []byte("CERTIFICAT"))
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"cut certificate", cat(a, cut), "PEM block 2: x509:"},
		{"bad base64 before a good block", cat(badBase64, a), "PEM block 1 is broken"},
		{"no END line", cat(a, noEnd), "PEM block 2 is broken"},
		{"no END line, then a good block", cat(noEnd, a), "PEM block 1 is broken"},
		{"type typo", cat(a, typo), `PEM block 2 is a "CERTIFICAT", not a CERTIFICATE`},
		{"a key", cat(key, a), `PEM block 1 is a "PRIVATE KEY"`},
		{"no block", []byte("MIIB...\n"), "no PEM certificate"},
		{"empty", nil, "no PEM certificate"},
	} {
		certs, err := Parse(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: Parse = %d certificates, %v; want one line with %q", c.name, len(certs), err, c.want)
		}
	}
}

func cat(b ...[]byte) []byte { return bytes.Join(b, nil) }

// TestLoad: the pool and count of a good file; errors start with the
// file's name.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.pem"), filepath.Join(dir, "bad.pem")
	a, b := newCA(t, "A"), newCA(t, "B")
	if os.WriteFile(good, cat(a, b), 0o600) != nil || os.WriteFile(bad, cat(a, []byte("-----BEGIN CERTIFICATE-----\nxx\n")), 0o600) != nil {
		t.Fatal("cannot write the test files")
	}
	pool, n, err := Load(good)
	if err != nil || n != 2 || pool == nil {
		t.Fatalf("Load(good) = %v, %d, %v", pool, n, err)
	}
	if _, _, err := Load(bad); err == nil || err.Error() != bad+": PEM block 2 is broken: its BEGIN line, base64 body or END line does not read (fix or remove that block)" {
		t.Errorf("Load(bad): %v", err)
	}
	missing := filepath.Join(dir, "none.pem")
	if _, _, err := Load(missing); err == nil || err.Error() != missing+": no such file or directory" {
		t.Errorf("Load(missing): %v", err)
	}
}

// TestLoadBounded: a file larger than MaxFile (a device or a log given
// by mistake) is refused without reading it all.
func TestLoadBounded(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.pem")
	if err := os.WriteFile(big, make([]byte, MaxFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than 8 MiB") {
		t.Errorf("Load(9 MiB file): %v", err)
	}
}

// FuzzParse: Parse never panics, and what it accepts is certificates
// only: one per BEGIN line, all of which AppendCertsFromPEM takes too.
func FuzzParse(f *testing.F) {
	a := newCA(f, "A")
	blk, _ := pem.Decode(a)
	f.Add(a)
	f.Add(cat([]byte("# comment\n"), a, a))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes[:40]}))
	f.Add(a[:len(a)-10])
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := Parse(data)
		if err != nil {
			if len(certs) != 0 || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Parse error %q with %d certificates", err, len(certs))
			}
			return
		}
		if n := bytes.Count(data, begin); len(certs) == 0 || len(certs) != n {
			t.Fatalf("Parse took %d certificates from %d BEGIN lines", len(certs), n)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			t.Fatal("Parse took a bundle AppendCertsFromPEM refuses")
		}
	})
}
