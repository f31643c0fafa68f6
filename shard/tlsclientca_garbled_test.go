package shard

import (
	"bytes"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCAStoreRefusesAGarbledCertificate: a CA file with a CERTIFICATE
// block that does not parse (cut, or edited) does not load, at start or on
// a reload: taken, it would silently drop that CA and refuse its clients.
// The CAs in use stay, and the error names the block.
func TestCAStoreRefusesAGarbledCertificate(t *testing.T) {
	a, b := newClientCA(t, "A"), newClientCA(t, "B")
	blk, _ := pem.Decode(b.pem)
	garbled := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes[:len(blk.Bytes)/2]})
	file := filepath.Join(t.TempDir(), "ca.pem")
	write := func(data ...[]byte) {
		if err := os.WriteFile(file, bytes.Join(data, nil), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(a.pem, garbled)
	if _, err := LoadClientCAs(file); err == nil || !strings.Contains(err.Error(), "PEM block 2") {
		t.Fatalf("LoadClientCAs with a garbled second certificate: %v; want an error naming it", err)
	}
	write(a.pem, b.pem)
	cas, err := LoadClientCAs(file)
	if err != nil || cas.Certificates() != 2 {
		t.Fatalf("LoadClientCAs: %v, %d certificates", err, cas.Certificates())
	}
	write(garbled, a.pem)
	if err := cas.Reload(); err == nil || cas.Certificates() != 2 {
		t.Fatalf("Reload with a garbled first certificate: %v, %d certificates in use; want an error and both CAs kept", err, cas.Certificates())
	}
}
