package kafka

import (
	"bytes"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSConfigRefusesABrokenCA: a brokers' CA file with a certificate
// that does not parse after one that does is an error naming the file and
// the block (AppendCertsFromPEM took the first and skipped the second: a
// broker signed by the second then fails at the handshake, far from the
// cause).
func TestTLSConfigRefusesABrokenCA(t *testing.T) {
	_, good := selfSigned(t)
	a, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(a)
	cut := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes[:len(blk.Bytes)/2]})
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, bytes.Join([][]byte{a, cut}, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := TLSConfig(file); err == nil || !strings.HasPrefix(err.Error(), file+": PEM block 2: ") {
		t.Fatalf("TLSConfig(a good and a cut certificate): %v; want an error naming %s and block 2", err, file)
	}
	if cfg, err := TLSConfig(good); err != nil || cfg.RootCAs == nil {
		t.Fatalf("TLSConfig(good): %v", err)
	}
}
