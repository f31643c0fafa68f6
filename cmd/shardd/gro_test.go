package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestGROFlag: --gro takes auto, on or off (listed in --help), and anything
// else is a one-line usage error.
func TestGROFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runBounded(t, []string{"--gro", "maybe", "127.0.0.1:0"}, &stdout, &stderr); code != exitUsage {
		t.Fatalf("--gro maybe: exit %d, want %d", code, exitUsage)
	}
	if msg, want := stderr.String(), `--gro "maybe": want one of auto, on, off`; !strings.Contains(msg, want) || strings.Count(msg, "\n") != 1 {
		t.Fatalf("stderr %q, want one line with %q", msg, want)
	}
	stdout.Reset()
	if code := run([]string{"--help"}, &stdout, &stderr, nil); code != exitOK || !strings.Contains(stdout.String(), "--gro") {
		t.Fatalf("--help (exit %d) does not list --gro", code)
	}
}
