package dns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestZoneDirectory: a directory given as a zone source serves every
// *.zone file in it, a reload picks up a file added since, and a directory
// without zone files is an error naming it.
func TestZoneDirectory(t *testing.T) {
	dir := t.TempDir()
	copyZone := func(src string) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(src)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyZone("../../testdata/dns/example.com.zone")
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not a zone"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if got := origins(srv.Zones()); got != "example.com." {
		t.Fatalf("zones from the directory: %q, want example.com. (README is not a zone)", got)
	}
	copyZone("../../testdata/dns/2.0.192.in-addr.arpa.zone")
	zs, err := srv.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if got := origins(zs); got != "2.0.192.in-addr.arpa. example.com." {
		t.Fatalf("zones after a file was added and a reload: %q", got)
	}

	empty := t.TempDir()
	if _, err := NewServer([]string{empty}); err == nil || !strings.Contains(err.Error(), empty) || !strings.Contains(err.Error(), "no *.zone file") {
		t.Fatalf("a directory without zone files: %v", err)
	}
}

func origins(zs *Zones) string {
	var o []string
	for _, z := range zs.List {
		o = append(o, z.Origin)
	}
	return strings.Join(o, " ")
}
