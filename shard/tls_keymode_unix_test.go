//go:build unix

package shard

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCertStoreKeyMode: a key every user may read is refused at load and
// at a reload, one line naming the key and the fix, and the pair in use
// keeps serving; 0600 and 0640 load.
func TestCertStoreKeyMode(t *testing.T) {
	g, store, pool1, dir := tlsGroup(t, Config{}) // key 0600
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	serialSeen := func(pool *x509.CertPool) string {
		_, cs := echoOverTLS(t, g, &tls.Config{RootCAs: pool}, "x")
		return cs.PeerCertificates[0].SerialNumber.String()
	}
	want := "TLS key " + keyFile + ": mode 0644 lets every user read or write its secrets (fix: chmod 0600 or 0640)"
	chmod := func(mode os.FileMode) {
		t.Helper()
		if err := os.Chmod(keyFile, mode); err != nil {
			t.Fatal(err)
		}
	}
	chmod(0o640)
	if err := store.Reload(); err != nil {
		t.Fatalf("Reload with a 0640 key: %v", err)
	}
	if _, err := LoadCerts(certFile, keyFile); err != nil {
		t.Fatalf("LoadCerts with a 0640 key: %v", err)
	}
	chmod(0o644)
	if s, err := LoadCerts(certFile, keyFile); err == nil || err.Error() != want {
		t.Errorf("LoadCerts with a 0644 key: %v, %v; want %q", s, err, want)
	}
	pool2 := selfSigned(t, dir, 2) // os.WriteFile keeps the 0644 of the key file
	if err := store.Reload(); err == nil || err.Error() != want {
		t.Errorf("Reload to a 0644 key: %v; want %q", err, want)
	}
	if s := serialSeen(pool1); s != "1" || store.Serial() != "1" {
		t.Fatalf("after a refused reload: serial %s (store %s), want 1", s, store.Serial())
	}
	chmod(0o600)
	if err := store.Reload(); err != nil {
		t.Fatalf("Reload with the key back at 0600: %v", err)
	}
	if s := serialSeen(pool2); s != "2" {
		t.Fatalf("after the reload: serial %s, want 2", s)
	}
}

// TestCertStoreFIFO: a FIFO given as the key or as the certificate is
// refused at once, one line naming it, without waiting for a writer. If
// LoadCerts does block, the test opens the FIFO for writing to release
// it, then fails.
func TestCertStoreFIFO(t *testing.T) {
	for _, c := range []struct{ name, prefix string }{{"key", "TLS key "}, {"cert", "TLS certificate "}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			selfSigned(t, dir, 1)
			fifo := filepath.Join(dir, "fifo.pem")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			if c.name == "key" {
				key = fifo
			} else {
				cert = fifo
			}
			done := make(chan error, 1)
			go func() {
				_, err := LoadCerts(cert, key)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(waitTimeout):
				if w, werr := os.OpenFile(fifo, os.O_WRONLY, 0); werr == nil {
					w.Close()
				}
				<-done
				t.Fatalf("LoadCerts blocked on a FIFO %s with no writer", c.name)
			}
			if want := c.prefix + fifo + ": not a regular file"; err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("LoadCerts = %v; want one line starting %q", err, want)
			}
		})
	}
}
