//go:build linux

package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestTSIGKeyFileFIFO: a FIFO given as --tsig-keys stops the start at
// once (exit 1, one line naming the file) instead of blocking on the open
// until a writer comes, deaf to SIGTERM; `shardd check` refuses it the
// same way.
func TestTSIGKeyFileFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo, zone := filepath.Join(dir, "fifo.key"), filepath.Join(dir, "xfr.test.zone")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(zone, []byte(xfrZoneText(1, "192.0.2.10")), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--handler", "dns", "--proto", "udp", "--zone", zone, "--tsig-keys", fifo, "127.0.0.1:0"}
	assertStartRefused(t, args, "TSIG key file "+fifo+": not a regular file")
}
