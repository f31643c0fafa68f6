//go:build unix

package dns

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadTSIGKeysFIFO: a FIFO given as the key file is refused at once,
// one line naming the file, without waiting for a writer (which would
// hang the daemon's start). If LoadTSIGKeys does block, the test opens
// the FIFO for writing to release it, then fails.
func TestLoadTSIGKeysFIFO(t *testing.T) {
	fifo := mkfifo(t, filepath.Join(t.TempDir(), "fifo.key"))
	err := openedWithin(t, fifo, func() error { _, err := LoadTSIGKeys(fifo); return err })
	want := "TSIG key file " + fifo + ": not a regular file"
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("LoadTSIGKeys(fifo) = %v; want one line starting %q", err, want)
	}
}
