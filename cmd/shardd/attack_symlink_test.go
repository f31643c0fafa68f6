//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// reopenOnto starts shardd --handler syslog on sink, moves the sink aside
// (as a rotation does), lets plant put something at its path and sends
// USR1: it returns the daemon and the line that reports the failed reopen.
func reopenOnto(t *testing.T, sink string, plant func(path string) error) (*daemon, map[string]any) {
	t.Helper()
	d := startDaemon(t, "--handler", "syslog", "--sink", sink, "--shards", "1", "127.0.0.1:0")
	d.WaitLine(t, "listening")
	if err := os.Rename(sink, sink+".1"); err != nil {
		t.Fatal(err)
	}
	if err := plant(sink); err != nil {
		t.Fatal(err)
	}
	if err := d.Cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	return d, d.WaitLine(t, "signal handling failed; the previous state keeps serving")
}

// TestAttackPidfileSymlink: a --pidfile path that is a symbolic link is
// refused at start with one line naming the problem and the fix (exit 1);
// the file it points to is untouched.
func TestAttackPidfileSymlink(t *testing.T) {
	dir := t.TempDir()
	v := testkit.Victim(t, dir)
	pidfile := filepath.Join(dir, "shardd.pid")
	if err := os.Symlink(v, pidfile); err != nil {
		t.Fatal(err)
	}
	code, stderr := runOnce(t, nil, "--shards", "1", "--pidfile", pidfile, "127.0.0.1:0")
	if code != exitRuntime {
		t.Errorf("exit %d, want %d", code, exitRuntime)
	}
	assertOneLine(t, stderr, "--pidfile "+pidfile+" is a symbolic link", "remove the link")
	testkit.AssertUntouched(t, v)
	if fi, err := os.Lstat(pidfile); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced or removed: %v %v", fi, err)
	}
	t.Logf("attack: --pidfile a symlink to another file: refused at start (exit %d), the file untouched", code)
}

// TestAttackPidfileTmpSymlink: links planted at the old predictable
// temporary name P.tmp, and at P after the start, are never followed: the
// pidfile is written beside them, the victims are untouched, and at exit
// shardd removes neither the link nor what it points to.
func TestAttackPidfileTmpSymlink(t *testing.T) {
	dir := t.TempDir()
	v := testkit.Victim(t, dir)
	pidfile := filepath.Join(dir, "shardd.pid")
	if err := os.Symlink(v, pidfile+".tmp"); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--shards", "1", "--pidfile", pidfile, "127.0.0.1:0")
	d.WaitLine(t, "listening")
	pid := strconv.Itoa(d.Cmd.Process.Pid)
	var got string
	for deadline := time.Now().Add(30 * time.Second); got != pid+"\n"; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(pidfile)
		if got = string(b); time.Now().After(deadline) {
			t.Fatalf("pidfile holds %q, want %s:\n%s", got, pid, d.Stderr)
		}
	}
	if fi, err := os.Lstat(pidfile); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("the pidfile is not a regular file: %v %v", fi, err)
	}
	testkit.AssertUntouched(t, v)
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 { // victim, the planted link, the pidfile: no temporary file left
		t.Errorf("directory holds %d entries, want 3: %v", len(ents), ents)
	}

	// Now a link at the pidfile's own path, to a file that holds our pid:
	// at exit shardd must not read through it nor remove it.
	v2 := filepath.Join(dir, "victim2")
	if err := os.WriteFile(v2, []byte(pid+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(pidfile); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(v2, pidfile); err != nil {
		t.Fatal(err)
	}
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d:\n%s", code, d.Stderr)
	}
	if fi, err := os.Lstat(pidfile); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("at exit shardd removed a link at the pidfile path that it did not write: %v", err)
	}
	if b, err := os.ReadFile(v2); err != nil || string(b) != pid+"\n" {
		t.Errorf("victim2: %q %v", b, err)
	}
	testkit.AssertUntouched(t, v)
	t.Logf("attack: symlinks at P.tmp and (after start) at P: neither followed, victims untouched")
}

// TestAttackSyslogSinkSymlink: a --sink path that is a symbolic link is
// refused at start (one line, exit 1), and on USR1 reopen (the old file
// stays in use); the files linked to are untouched.
func TestAttackSyslogSinkSymlink(t *testing.T) {
	dir := t.TempDir()
	v := testkit.Victim(t, dir)
	sink := filepath.Join(dir, "sink.ndjson")
	if err := os.Symlink(v, sink); err != nil {
		t.Fatal(err)
	}
	code, stderr := runOnce(t, nil, "--handler", "syslog", "--sink", sink, "--shards", "1", "127.0.0.1:0")
	if code != exitRuntime {
		t.Errorf("exit %d, want %d", code, exitRuntime)
	}
	assertOneLine(t, stderr, "--sink "+sink, "symbolic link")
	testkit.AssertUntouched(t, v)

	// Started on a regular file; the path becomes a link (as a rotation
	// by another user could make it); USR1 must refuse it.
	if err := os.Remove(sink); err != nil {
		t.Fatal(err)
	}
	d, l := reopenOnto(t, sink, func(path string) error { return os.Symlink(v, path) })
	if e, _ := l["error"].(string); !strings.Contains(e, "symbolic link") || !strings.Contains(e, sink) {
		t.Errorf("reopen error %q: want the path and the reason", e)
	}
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d:\n%s", code, d.Stderr)
	}
	testkit.AssertUntouched(t, v)
	t.Logf("attack: --sink a symlink: refused at start (exit %d) and on USR1 reopen; the file linked to untouched", code)
}
