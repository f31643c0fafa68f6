package shard

import (
	"bytes"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCAStoreRefusesWhatIsNotACertificate: a CA file with a block whose
// base64 is broken (pem.Decode skips it and returns the next one), or a
// block that is not a certificate (a key pasted in), does not load: the
// error names the file and the block. Taken, the first would silently
// drop a CA, and the second hides a file mix-up.
func TestCAStoreRefusesWhatIsNotACertificate(t *testing.T) {
	a := newClientCA(t, "A")
	broken := bytes.Replace(newClientCA(t, "B").pem, []byte("\n"), []byte("\n!"), 2)
	key := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	file := filepath.Join(t.TempDir(), "ca.pem")
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"broken base64", append(append([]byte{}, broken...), a.pem...), "PEM block 1 is broken"},
		{"a key", append(append([]byte{}, a.pem...), key...), `PEM block 2 is a "EC PRIVATE KEY"`},
	} {
		if err := os.WriteFile(file, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		cas, err := LoadClientCAs(file)
		if err == nil || !strings.HasPrefix(err.Error(), "TLS client CA "+file+": ") || !strings.Contains(err.Error(), c.want) {
			n := -1
			if cas != nil {
				n = cas.Certificates()
			}
			t.Errorf("%s: LoadClientCAs = %d certificates, %v; want an error naming the file and %q", c.name, n, err, c.want)
		}
	}
}
