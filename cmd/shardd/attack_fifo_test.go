//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestAttackPidfileFIFO: a FIFO at the --pidfile path is refused at start
// (one line, exit 1), and one put there while shardd runs does not block its
// exit: TERM is handled, shardd exits 0 and leaves the FIFO alone.
func TestAttackPidfileFIFO(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "shardd.pid")
	if err := syscall.Mkfifo(pidfile, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stderr := runOnce(t, nil, "--shards", "1", "--pidfile", pidfile, "127.0.0.1:0")
	if code != exitRuntime {
		t.Errorf("exit %d, want %d", code, exitRuntime)
	}
	assertOneLine(t, stderr, "--pidfile "+pidfile+" is not a regular file")
	if err := os.Remove(pidfile); err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t, "--shards", "1", "--pidfile", pidfile, "127.0.0.1:0")
	d.WaitLine(t, "listening")
	d.WaitPidfile(t, pidfile)
	if err := os.Remove(pidfile); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(pidfile, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := d.StopWithin(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d:\n%s", code, d.Stderr)
	}
	if fi, err := os.Lstat(pidfile); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO at the pidfile path was removed or replaced: %v %v", fi, err)
	}
	if !t.Failed() {
		t.Logf("attack: FIFO at --pidfile: refused at start (exit %d); planted while running, TERM still exits 0 and the FIFO is left", code)
	}
}

// TestAttackPidfileHardLink: the pidfile path replaced while shardd runs by
// a hard link to another file that holds shardd's pid: at exit shardd
// removes neither that name nor the file.
func TestAttackPidfileHardLink(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "shardd.pid")
	d := startDaemon(t, "--shards", "1", "--pidfile", pidfile, "127.0.0.1:0")
	d.WaitLine(t, "listening")
	pid := d.WaitPidfile(t, pidfile)
	v := filepath.Join(dir, "victim")
	if err := os.WriteFile(v, []byte(pid+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(pidfile); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(v, pidfile); err != nil {
		t.Fatal(err)
	}
	if code := d.StopWithin(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d:\n%s", code, d.Stderr)
	}
	fi, err := os.Lstat(pidfile)
	vi, verr := os.Stat(v)
	if err != nil || verr != nil || !os.SameFile(fi, vi) {
		t.Errorf("at exit shardd removed a hard link at the pidfile path that it did not write: %v %v", err, verr)
	}
	if b, _ := os.ReadFile(v); string(b) != pid+"\n" {
		t.Errorf("victim: %q", b)
	}
	if !t.Failed() {
		t.Logf("attack: hard link at --pidfile after start: left alone at exit (exit 0)")
	}
}

// TestAttackSyslogSinkFIFOAndHardLink: a --sink path that is a FIFO with no
// reader, or a hard link to another file, is refused at start with one line
// (exit 1), at once; a FIFO put at the path while shardd runs does not
// wedge it: USR1 reports it and TERM is still handled (exit 0); the linked
// file is untouched.
func TestAttackSyslogSinkFIFOAndHardLink(t *testing.T) {
	dir := t.TempDir()
	v := testkit.Victim(t, dir)
	sink := filepath.Join(dir, "sink.ndjson")
	if err := syscall.Mkfifo(sink, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stderr := runOnce(t, nil, "--handler", "syslog", "--sink", sink, "--shards", "1", "127.0.0.1:0")
	if code != exitRuntime {
		t.Errorf("FIFO: exit %d, want %d", code, exitRuntime)
	}
	assertOneLine(t, stderr, "--sink "+sink, "FIFO with no reader")
	if err := os.Remove(sink); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(v, sink); err != nil {
		t.Fatal(err)
	}
	code, stderr = runOnce(t, nil, "--handler", "syslog", "--sink", sink, "--shards", "1", "127.0.0.1:0")
	if code != exitRuntime {
		t.Errorf("hard link: exit %d, want %d", code, exitRuntime)
	}
	assertOneLine(t, stderr, "--sink "+sink, "more than one name")
	testkit.AssertUntouched(t, v)
	if err := os.Remove(sink); err != nil {
		t.Fatal(err)
	}

	d, l := reopenOnto(t, sink, func(path string) error { return syscall.Mkfifo(path, 0o600) })
	if e, _ := l["error"].(string); !strings.Contains(e, "FIFO with no reader") || !strings.Contains(e, sink) {
		t.Errorf("reopen error %q: want the path and the reason", e)
	}
	if code := d.StopWithin(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d:\n%s", code, d.Stderr)
	}
	testkit.AssertUntouched(t, v)
	if !t.Failed() {
		t.Logf("attack: --sink a FIFO without a reader or a hard link: refused at start (exit %d); a FIFO planted while running: USR1 refuses it, TERM exits 0", code)
	}
}
