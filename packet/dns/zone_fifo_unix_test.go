//go:build unix

package dns

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// openedWithin runs load, and if it has not returned after 30 s (blocked
// opening fifo, which has no writer), opens fifo for writing to release
// it and fails the test.
func openedWithin(t *testing.T, fifo string, load func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- load() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatalf("blocked opening the FIFO %s with no writer", fifo)
		return nil
	}
}

func mkfifo(t *testing.T, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func wantOneLine(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %v; want one line with %q", err, parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q; want it to contain %q", err, p)
		}
	}
}

// TestLoadZoneFIFO: a FIFO with no writer given as a zone file (or as a
// *.zone file of a --zone directory) is refused at once, one line naming
// it, instead of blocking the start or a reload on its open.
func TestLoadZoneFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := mkfifo(t, filepath.Join(dir, "example.zone"))
	err := openedWithin(t, fifo, func() error { _, err := LoadZone(fifo); return err })
	wantOneLine(t, err, "zone "+fifo+": not a regular file")
	err = openedWithin(t, fifo, func() error { _, err := LoadZones([]string{dir}); return err })
	wantOneLine(t, err, "zone "+fifo+": not a regular file")
}

// TestLoadZoneDevice: a device is refused as a FIFO is (reading
// /dev/zero would never end).
func TestLoadZoneDevice(t *testing.T) {
	_, err := LoadZone("/dev/zero")
	wantOneLine(t, err, "zone /dev/zero: not a regular file")
}

// TestZoneIncludeFIFO: a FIFO named by $INCLUDE (relative to the zone
// file, or absolute) is refused at once, one line naming it; a regular
// file $INCLUDEd is still read.
func TestZoneIncludeFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := mkfifo(t, filepath.Join(dir, "records.inc"))
	if err := os.WriteFile(filepath.Join(dir, "ok.inc"), []byte("www 300 IN A 192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	head := "$ORIGIN example.\n@ 300 IN SOA ns hostmaster 1 3600 600 86400 300\n@ 300 IN NS ns\nns 300 IN A 192.0.2.53\n"
	for _, inc := range []string{"records.inc", fifo} {
		zf := filepath.Join(dir, "example.zone")
		if err := os.WriteFile(zf, []byte(head+"$INCLUDE "+inc+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := openedWithin(t, fifo, func() error { _, err := LoadZone(zf); return err })
		wantOneLine(t, err, "zone "+zf+":", "records.inc", "not a regular file")
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, filepath.Join(dir, "example.zone"))
	if err != nil {
		t.Fatal(err)
	}
	for _, zf := range []string{filepath.Join(dir, "example.zone"), rel} {
		if err := os.WriteFile(zf, []byte(head+"$INCLUDE ok.inc\n$INCLUDE "+filepath.Join(dir, "ok.inc")+" sub.example.\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		z, err := LoadZone(zf)
		if err != nil {
			t.Fatalf("%s: %v", zf, err)
		}
		if z.File != zf || z.Count != 5 {
			t.Errorf("%s: File %q, %d records; want the name given and 5 (SOA, NS, 3 A)", zf, z.File, z.Count)
		}
	}
}

// TestReadCopyFIFO: a FIFO with no writer where a --zone-dir copy is read
// back at start is refused at once (the copy is then not served).
func TestReadCopyFIFO(t *testing.T) {
	fifo := mkfifo(t, filepath.Join(t.TempDir(), "example.zone"))
	err := openedWithin(t, fifo, func() error { _, _, err := readCopy(fifo); return err })
	wantOneLine(t, err, fifo, "not a regular file")
}
