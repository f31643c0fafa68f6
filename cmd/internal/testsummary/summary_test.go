package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the streams")

// summarize runs the summary over a recorded go test -json stream.
func summarize(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	s := newSummary(&out)
	if err := s.read(f); err != nil {
		t.Fatal(err)
	}
	s.report()
	return out.String()
}

// TestSummaryGolden: each recorded stream (testdata/gen.sh) gives the
// output in its golden file.
func TestSummaryGolden(t *testing.T) {
	for _, name := range []string{"mixed", "ok", "crash", "timeout"} {
		t.Run(name, func(t *testing.T) {
			got := summarize(t, name)
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("summary of %s.json:\n%s\nwant (%s):\n%s", name, got, golden, want)
			}
		})
	}
}

// The properties the golden files must have, checked on their own so a
// careless -update cannot bless a wrong summary.
func TestSummaryMixed(t *testing.T) {
	out := summarize(t, "mixed")
	for _, want := range []string{
		// a build error: the compiler's message and the package line
		"cannot use \"42\" (untyped string constant) as int value",
		"FAIL\texample.com/fixture/builderr [build failed]\n",
		// a failing test: what it logged, its FAIL line, the package's
		"    fail_test.go:8: context logged before the failure\n",
		"    fail_test.go:9: got 1, want 2\n",
		"--- FAIL: TestBroken",
		"    fail_test.go:16: case bad failed\n",
		"FAIL\texample.com/fixture/fail\t",
		"-test.shuffle ", // a failing package's seed, to run it again in that order
		// a panic: its message and trace
		"panic: assignment to entry in nil map",
		"panic/panic_test.go:10",
		"ok  \texample.com/fixture/pass\t",
		"?   \texample.com/fixture/nofiles\t[no test files]\n",
		// the lists at the end
		"\nfailed: build of example.com/fixture/builderr\n" +
			"failed: TestBroken (example.com/fixture/fail)\n" +
			"failed: TestTable/bad (example.com/fixture/fail)\n" +
			"failed: TestPanics (example.com/fixture/panic)\n" +
			"skipped: TestSubtests/two (example.com/fixture/pass): subtest skipped: not on this kernel\n" +
			"skipped: TestNeedsRoot (example.com/fixture/skip): needs root\n" +
			"skipped: TestNeedsTool (example.com/fixture/skip): knotd is not installed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the summary:\n%s", want, out)
		}
	}
	for _, hidden := range []string{"hidden:", "=== RUN", "--- PASS", "--- SKIP", "checking the euid", "\nPASS\n", "failed: TestTable (", "TestOK", "TestBefore"} {
		if strings.Contains(out, hidden) {
			t.Errorf("%q in the summary, which go test without -v does not print:\n%s", hidden, out)
		}
	}
	if !strings.HasSuffix(out, "knotd is not installed\n") {
		t.Errorf("the lists are not the end of the output:\n%s", out)
	}
}

// A passing run prints the ok lines and the skips; a crash or a timeout
// (no test event) prints the running test's output and lists it.
func TestSummaryOKCrashTimeout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		want, not []string
	}{
		{"ok", []string{"ok  \texample.com/fixture/pass\t", "ok  \texample.com/fixture/skip\t",
			"\nskipped: TestSubtests/two (example.com/fixture/pass): subtest skipped: not on this kernel\n"}, []string{"failed:", "FAIL", "hidden", "-test.shuffle"}},
		{"crash", []string{"    crash_test.go:8: starting a goroutine that panics\n", "panic: boom in a goroutine\n",
			"FAIL\texample.com/fixture/crash\t", "\nfailed: TestGoroutinePanics (example.com/fixture/crash): did not finish\n"}, []string{"skipped:"}},
		{"timeout", []string{"    hang_test.go:12: waiting forever\n", "panic: test timed out after 2s\n",
			"FAIL\texample.com/fixture/hang\t", "\nfailed: TestHangs (example.com/fixture/hang): did not finish\n"}, []string{"TestQuick"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := summarize(t, tc.name)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("no %q in the summary:\n%s", w, out)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("%q in the summary:\n%s", n, out)
				}
			}
		})
	}
	// The crashed test's output comes before its package's FAIL line.
	out := summarize(t, "crash")
	if strings.Index(out, "panic: boom") > strings.Index(out, "FAIL\texample.com/fixture/crash") {
		t.Errorf("the crash's output after the package's FAIL line:\n%s", out)
	}
}

// Lines that are not events (a go test that is not go test -json) pass
// through; a multi-line skip message is joined.
func TestSummaryRawLinesAndReasons(t *testing.T) {
	var out bytes.Buffer
	s := newSummary(&out)
	in := `not json
{"Action":"output","Package":"p","Test":"TestM","Output":"=== RUN   TestM\n"}
{"Action":"output","Package":"p","Test":"TestM","Output":"    m_test.go:3: first log\n"}
{"Action":"output","Package":"p","Test":"TestM","Output":"    m_test.go:4: cannot run:\n"}
{"Action":"output","Package":"p","Test":"TestM","Output":"        detail line\n"}
{"Action":"output","Package":"p","Test":"TestM","Output":"--- SKIP: TestM (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestM"}
{"Action":"skip","Package":"p","Test":"TestN"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}
{"Action":"pass","Package":"p"}
`
	if err := s.read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	s.report()
	want := "not json\nok  \tp\t0.1s\n\nskipped: TestM (p): cannot run: detail line\nskipped: TestN (p): (no reason given)\n"
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
}
