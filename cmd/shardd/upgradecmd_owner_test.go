//go:build linux

package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shardd/shardd/cmd/internal/tooltest"
)

// TestUpgradeOutcomeFromAnotherUserIgnored: an outcome file owned by a
// uid other than the pidfile's (planted by another user in a shared
// directory) is not believed; the same file owned by the pidfile's owner
// is. Needs root to hand the file to another uid.
func TestUpgradeOutcomeFromAnotherUserIgnored(t *testing.T) {
	tooltest.RequireRoot(t, "to chown a file")
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "shardd.pid")
	if err := os.WriteFile(pidfile, []byte("4242\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pid, pfi, err := readPid(pidfile)
	if err != nil || pid != 4242 {
		t.Fatalf("readPid: %d, %v", pid, err)
	}
	out := outcomePath(pidfile)
	if err := os.WriteFile(out, []byte("ok 4343\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(out, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if line, ok := newOutcome(out, nil, pfi); ok {
		t.Fatalf("an outcome owned by uid 65534 was believed: %q", line)
	}
	if err := os.Chown(out, os.Geteuid(), os.Getegid()); err != nil {
		t.Fatal(err)
	}
	if line, ok := newOutcome(out, nil, pfi); !ok || line != "ok 4343" {
		t.Fatalf("the pidfile owner's outcome: %q, %v", line, ok)
	}
}
