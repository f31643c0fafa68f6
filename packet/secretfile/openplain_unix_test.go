//go:build unix

package secretfile

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenPlain: a regular file is opened and streams; a device and a
// directory are refused with an error that does not repeat the path (a
// FIFO with no writer: the packet/dns tests, which release a blocked open).
func TestOpenPlain(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "a.zone")
	if err := os.WriteFile(reg, []byte("zone text"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := OpenPlain(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil || string(b) != "zone text" {
		t.Errorf("OpenPlain(regular file) read %q, %v", b, err)
	}
	for path, kind := range map[string]string{"/dev/null": "(Dc---------)", dir: "(d---------)"} {
		f, err := OpenPlain(path)
		if err == nil {
			f.Close()
		}
		want := "not a regular file " + kind + ": give the file itself"
		if err == nil || err.Error() != want || strings.Contains(err.Error(), path) {
			t.Errorf("OpenPlain(%s): %v; want %q", path, err, want)
		}
	}
}
