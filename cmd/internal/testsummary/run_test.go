package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunExitCode runs the real go test on the fixture module: the exit
// code is go test's (0 when all pass, non-zero on a failing test and on a
// build failure), and the summary of the real stream ends with the lists.
func TestRunExitCode(t *testing.T) {
	dir := filepath.Join("testdata", "mod")
	for _, tc := range []struct {
		pkgs []string
		code int
		want []string
	}{
		{[]string{"./pass", "./skip"}, 0, []string{"ok  \texample.com/fixture/pass", "\nskipped: TestNeedsRoot (example.com/fixture/skip): needs root\n"}},
		{[]string{"./fail", "./pass"}, 1, []string{"    fail_test.go:9: got 1, want 2\n", "\nfailed: TestBroken (example.com/fixture/fail)\n"}},
		{[]string{"./builderr"}, 1, []string{"builderr.go:4:28: cannot use", "\nfailed: build of example.com/fixture/builderr\n"}},
	} {
		t.Run(strings.Join(tc.pkgs, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(dir, append([]string{"-count=1"}, tc.pkgs...), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("no %q in\n%s\nstderr:\n%s", w, stdout.String(), stderr.String())
				}
			}
		})
	}
}

// A go that cannot start is exit 1, not a panic.
func TestRunNoGo(t *testing.T) {
	t.Setenv("GO", filepath.Join(t.TempDir(), "no-such-go"))
	var stdout, stderr bytes.Buffer
	if code := run(".", []string{"./..."}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "testsummary:") {
		t.Errorf("exit %d, stderr %q; want 1 and a testsummary: line", code, stderr.String())
	}
}
