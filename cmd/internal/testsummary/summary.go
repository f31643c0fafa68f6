package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// event is one line of go test -json (cmd/test2json), build events included.
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	ImportPath  string // build-output, build-fail
	FailedBuild string // a package's fail: the build that failed
}

// line is one output line of a test.
type line struct{ test, text string }

// pkg is what a package's stream holds until its end.
type pkg struct {
	groups map[string][]line // by top-level test: output of it and its subtests, in order
	status map[string]string // test -> pass, fail or skip
	lines  []string          // the package's own output (ok/FAIL lines, TestMain)
	failed strings.Builder   // failed tests' output, printed with the package's FAIL line
}

// result is one failed or skipped test; test is empty for a failed build.
type result struct{ pkg, test, reason string }

// summary turns the event stream into go test's non-verbose output and
// collects the failed and skipped tests.
type summary struct {
	w       io.Writer
	pkgs    map[string]*pkg
	failed  []result
	skipped []result
}

func newSummary(w io.Writer) *summary {
	return &summary{w: w, pkgs: map[string]*pkg{}}
}

// read handles every line of r; a line that is not an event is printed as is.
func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // a test may print long lines
	for sc.Scan() {
		var e event
		if b := sc.Bytes(); len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &e) != nil {
			fmt.Fprintf(s.w, "%s\n", b)
			continue
		}
		s.handle(e)
	}
	return sc.Err()
}

func (s *summary) handle(e event) {
	switch e.Action {
	case "build-output":
		io.WriteString(s.w, e.Output)
	case "output":
		p := s.pkg(e.Package)
		if e.Test == "" {
			p.lines = append(p.lines, e.Output)
		} else {
			top, _, _ := strings.Cut(e.Test, "/")
			p.groups[top] = append(p.groups[top], line{e.Test, e.Output})
		}
	case "pass", "fail", "skip":
		if e.Test == "" {
			s.endPackage(e)
		} else {
			s.endTest(e)
		}
	}
}

func (s *summary) pkg(name string) *pkg {
	p := s.pkgs[name]
	if p == nil {
		p = &pkg{groups: map[string][]line{}, status: map[string]string{}}
		s.pkgs[name] = p
	}
	return p
}

// endTest records a test's result; at the end of a top-level test that
// failed it prints the output of the tests in its group that failed.
func (s *summary) endTest(e event) {
	p := s.pkg(e.Package)
	p.status[e.Test] = e.Action
	top, _, sub := strings.Cut(e.Test, "/")
	switch e.Action {
	case "skip":
		s.skipped = append(s.skipped, result{e.Package, e.Test, skipReason(p.groups[top], e.Test)})
	case "fail":
		s.failed = append(s.failed, result{pkg: e.Package, test: e.Test})
	}
	if sub {
		return
	}
	if e.Action == "fail" {
		s.printGroup(&p.failed, p, top)
	}
	delete(p.groups, top)
}

// printGroup prints the output of the tests of a group that failed or never
// finished, without the === framing lines, as go test does without -v.
// It goes to w: the package's buffer, so that packages running side by side
// do not interleave their failures (go test prints a package's output when
// the package ends).
func (s *summary) printGroup(w io.Writer, p *pkg, top string) {
	for _, l := range p.groups[top] {
		if st := p.status[l.test]; (st == "" || st == "fail") && !framing(l.text) {
			io.WriteString(w, l.text)
		}
	}
}

// endPackage prints the output of the tests that never finished (the binary
// crashed or timed out: no test event says so), then the package's lines:
// all of them if it failed (-test.shuffle's seed included), else its ok or
// "no test files" line.
func (s *summary) endPackage(e event) {
	p := s.pkg(e.Package)
	for _, top := range slices.Sorted(mapKeys(p.groups)) {
		s.printGroup(&p.failed, p, top)
		for _, l := range p.groups[top] {
			if p.status[l.test] == "" {
				p.status[l.test] = "fail"
				s.failed = append(s.failed, result{e.Package, l.test, "did not finish"})
			}
		}
	}
	io.WriteString(s.w, p.failed.String())
	for _, l := range p.lines {
		if e.Action == "fail" && !framing(l) || strings.HasPrefix(l, "ok  \t") || strings.HasPrefix(l, "?   \t") {
			io.WriteString(s.w, l)
		}
	}
	if e.FailedBuild != "" {
		s.failed = append(s.failed, result{pkg: e.Package, reason: "build failed"})
	}
	delete(s.pkgs, e.Package)
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// framing says whether a line is one of the test runner's === lines, which
// go test prints only with -v.
func framing(l string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// logLine is a t.Log/t.Skip line: indented "file.go:LINE: message".
var logLine = regexp.MustCompile(`^\s+[^\s:]+\.go:\d+: (.*)$`)

// skipReason is the last message a skipped test logged (t.Skip's), with the
// continuation lines of a multi-line message joined.
func skipReason(group []line, test string) string {
	var msg []string
	for _, l := range group {
		text := strings.TrimRight(l.text, "\n")
		switch {
		case l.test != test || framing(text) || strings.HasPrefix(strings.TrimSpace(text), "--- "):
		case logLine.MatchString(text):
			msg = []string{logLine.FindStringSubmatch(text)[1]}
		case len(msg) > 0:
			msg = append(msg, strings.TrimSpace(text))
		}
	}
	if len(msg) == 0 {
		return "(no reason given)"
	}
	return strings.Join(msg, " ")
}

// report lists the failed tests (the innermost ones: a parent that failed
// because a subtest did is not repeated) and the skipped ones, each sorted
// by package and name.
func (s *summary) report() {
	var failed []result
	for _, f := range s.failed {
		if !slices.ContainsFunc(s.failed, func(g result) bool {
			return g.pkg == f.pkg && f.test != "" && strings.HasPrefix(g.test, f.test+"/")
		}) {
			failed = append(failed, f)
		}
	}
	byName := func(a, b result) int { return strings.Compare(a.pkg+" "+a.test, b.pkg+" "+b.test) }
	slices.SortFunc(failed, byName)
	slices.SortFunc(s.skipped, byName)
	if len(failed)+len(s.skipped) > 0 {
		fmt.Fprintln(s.w)
	}
	for _, f := range failed {
		switch {
		case f.test == "":
			fmt.Fprintf(s.w, "failed: build of %s\n", f.pkg)
		case f.reason != "":
			fmt.Fprintf(s.w, "failed: %s (%s): %s\n", f.test, f.pkg, f.reason)
		default:
			fmt.Fprintf(s.w, "failed: %s (%s)\n", f.test, f.pkg)
		}
	}
	for _, k := range s.skipped {
		fmt.Fprintf(s.w, "skipped: %s (%s): %s\n", k.test, k.pkg, k.reason)
	}
}
