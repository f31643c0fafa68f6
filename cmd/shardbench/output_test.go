package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestAttackResultsSymlink: a symbolic link planted at --out/results.json
// (to a file another user cares about) is refused, by writeResults and,
// before any load runs, by the start of a run; the link's target is not
// written.
func TestAttackResultsSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := testkit.Victim(t, t.TempDir())
	link := filepath.Join(dir, "results.json")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	want := "--out " + link + " is a symbolic link (to " + victim + ")"
	err := writeResults(dir, "md", results{}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("writeResults with a link at results.json: %v; want %q...", err, want)
	}
	testkit.AssertUntouched(t, victim)
	// run stops at the check, before it would start the (fake) binaries.
	bin := t.TempDir()
	for _, b := range []string{"shardd", "shardload", "naive"} {
		if err := os.WriteFile(filepath.Join(bin, b), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	err = run([]string{"--bin", bin, "--out", dir, "--modes", "discard", "--sizes", "64", "--reps", "1"})
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("run with a link at results.json: %v; want %q...", err, want)
	}
	testkit.AssertUntouched(t, victim)
	t.Logf("attack: a link planted at results.json refused, its target untouched: %v", err)
}
