//go:build linux

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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
	want := "TSIG key file " + fifo + ": not a regular file"
	code, stderr := runOnce(t, nil, args...) // fails the test if shardd keeps running
	if code != exitRuntime {
		t.Errorf("exit %d, want %d: %s", code, exitRuntime, stderr)
	}
	assertOneLine(t, stderr, want)

	var stdout, errb bytes.Buffer
	code = run(append([]string{"check", "--log-level", "warn"}, args...), &stdout, &errb, nil)
	if got := stdout.String() + errb.String(); code != exitRuntime || strings.Count(got, "\n") != 1 || !strings.Contains(got, "shardd check: "+want) {
		t.Errorf("shardd check: exit %d, output %q; want %d and one line with %q", code, got, exitRuntime, want)
	}
}
