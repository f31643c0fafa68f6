package shard

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestReadmeLibraryExample: the program README's "Using the library" shows
// is example_test.go (ExampleListen, compiled and run with its output
// checked by go test) as a main package, so the README's code compiles as
// pasted and cannot drift from the API.
func TestReadmeLibraryExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	got, err := goBlockAfter(string(readme), "## Using the library")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	want, err := exampleAsProgram(string(example), "shard_test", "ExampleListen")
	if err != nil {
		t.Fatal(err)
	}
	if line, g, w := firstDiff(got, want); line > 0 {
		t.Fatalf("README.md's first Go block after \"## Using the library\" differs from shard/example_test.go "+
			"at line %d:\n README:  %q\n example: %q\nThe README block should read:\n```go\n%s```", line, g, w, want)
	}
}

// goBlockAfter returns the body of the first ```go block after the line heading.
func goBlockAfter(doc, heading string) (string, error) {
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		return "", fmt.Errorf("no line %q", heading)
	}
	_, rest, ok = strings.Cut(rest, "```go\n")
	if !ok {
		return "", fmt.Errorf("no ```go block after %q", heading)
	}
	block, _, ok := strings.Cut(rest, "```\n")
	if !ok {
		return "", fmt.Errorf("the ```go block after %q does not end", heading)
	}
	return block, nil
}

// exampleAsProgram turns a whole-file example into the program a reader
// pastes: package main, the example function named main, and no Output
// comment (the lines from "// Output:" to the function's end).
func exampleAsProgram(src, pkg, fn string) (string, error) {
	var b strings.Builder
	inOutput, found := false, false
	for _, l := range strings.SplitAfter(src, "\n") {
		switch {
		case l == "package "+pkg+"\n":
			l = "package main\n"
		case l == "func "+fn+"() {\n":
			l, found = "func main() {\n", true
		case found && l == "\t// Output:\n":
			inOutput = true
		case inOutput && l == "}\n":
			inOutput = false
		}
		if !inOutput {
			b.WriteString(l)
		}
	}
	if !found {
		return "", fmt.Errorf("no func %s() in the example", fn)
	}
	return b.String(), nil
}

// firstDiff returns the first line (from 1) where a and b differ, ignoring
// trailing blanks, or 0.
func firstDiff(a, b string) (line int, la, lb string) {
	as, bs := strings.Split(strings.TrimSpace(a), "\n"), strings.Split(strings.TrimSpace(b), "\n")
	for i := range max(len(as), len(bs)) {
		la, lb = "", ""
		if i < len(as) {
			la = strings.TrimRight(as[i], " \t")
		}
		if i < len(bs) {
			lb = strings.TrimRight(bs[i], " \t")
		}
		if la != lb {
			return i + 1, la, lb
		}
	}
	return 0, "", ""
}
