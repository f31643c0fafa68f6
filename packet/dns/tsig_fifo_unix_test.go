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

// TestLoadTSIGKeysFIFO: a FIFO given as the key file is refused at once,
// one line naming the file, without waiting for a writer (which would
// hang the daemon's start). If LoadTSIGKeys does block, the test opens
// the FIFO for writing to release it, then fails.
func TestLoadTSIGKeysFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo.key")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := LoadTSIGKeys(fifo)
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		w, werr := os.OpenFile(fifo, os.O_WRONLY, 0)
		if werr == nil {
			w.Close()
		}
		<-done
		t.Fatal("LoadTSIGKeys blocked on a FIFO with no writer")
	}
	want := "TSIG key file " + fifo + ": not a regular file"
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("LoadTSIGKeys(fifo) = %v; want one line starting %q", err, want)
	}
}
