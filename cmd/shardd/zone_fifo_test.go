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

// TestZoneFileFIFO: a FIFO with no writer given as --zone stops the start
// at once (exit 1, one line naming the file) instead of blocking on the
// open until a writer comes; `shardd check` refuses it the same way.
func TestZoneFileFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "example.zone")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--handler", "dns", "--proto", "udp", "--shards", "1", "--zone", fifo, "127.0.0.1:0"}
	assertStartRefused(t, args, "zone "+fifo+": not a regular file")
}

// assertStartRefused checks that shardd args exits 1 at once with one
// line containing want, and that `shardd check` args does the same.
func assertStartRefused(t *testing.T, args []string, want string) {
	t.Helper()
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

// TestZoneDirFIFOOnHUP: a FIFO with no writer put as a *.zone file into a
// --zone directory is refused at the next HUP (logged, one line naming
// it; the other zones reload) instead of wedging the reload, and TERM
// still stops shardd (exit 0).
func TestZoneDirFIFOOnHUP(t *testing.T) {
	dir := t.TempDir()
	text := "$ORIGIN a.test.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"
	if err := os.WriteFile(filepath.Join(dir, "a.test.zone"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--handler", "dns", "--proto", "udp", "--shards", "1", "--zone", dir, "127.0.0.1:0")
	d.WaitLine(t, "listening")
	fifo := filepath.Join(dir, "b.test.zone")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // if shardd blocked opening it, release it (no reader: nothing to release)
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	l := d.WaitLine(t, "zone reload failed; the zone's previous version keeps serving (none if it had none)")
	if e, _ := l["error"].(string); !strings.Contains(e, "zone "+fifo+": not a regular file") || strings.Contains(e, "\n") {
		t.Errorf("reload error %q: want one line naming the FIFO", e)
	}
	d.WaitLine(t, "reloaded")
	if code := d.StopWithin(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d:\n%s", code, d.Stderr)
	}
}
