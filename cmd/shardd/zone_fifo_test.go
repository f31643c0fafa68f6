//go:build linux

package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestZoneFileFIFO: a FIFO with no writer given as --zone stops the start
// at once (exit 1, one line naming the file) instead of blocking on the
// open until a writer comes; `shardd check` refuses it the same way.
func TestZoneFileFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "example.zone")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--handler", "dns", "--proto", "udp", "--shards", "1", "--zone", fifo, "127.0.0.1:0"}
	want := "zone " + fifo + ": not a regular file"
	code, stderr := runOnce(t, nil, args...) // fails the test (and kills shardd) if it keeps running
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
