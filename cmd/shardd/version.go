package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by the Makefile's build and run targets (-ldflags -X), for builds
// without VCS stamping (go run, -buildvcs=false, a tree outside git): the
// output of git describe --always --dirty, and of git rev-parse HEAD.
var (
	gitVersion string
	commit     string
)

// buildInfo is what shardd version prints.
type buildInfo struct {
	version   string // module version, git describe, or "dev"
	commit    string // VCS revision, or "unknown"
	modified  bool   // built from a tree with uncommitted changes
	goVersion string
	platform  string // GOOS/GOARCH
}

// readBuildInfo gathers the version from the binary's own build
// information (runtime/debug), falling back to what -ldflags set.
func readBuildInfo() buildInfo {
	b := buildInfo{version: version(), goVersion: runtime.Version(), platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.commit = s.Value
			case "vcs.modified":
				b.modified = s.Value == "true"
			}
		}
	}
	if b.commit == "" && commit != "" {
		b.commit = commit
		b.modified = strings.HasSuffix(gitVersion, "-dirty")
	}
	if b.commit == "" {
		b.commit = "unknown"
	}
	return b
}

// version is the module version of a go install'ed build, else what the
// Makefile stamped (git describe), else "dev".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	if gitVersion != "" {
		return gitVersion
	}
	return "dev"
}

// String is one line: "shardd v1.2.0 commit 0123abcd (modified) go1.26.0 linux/amd64".
func (b buildInfo) String() string {
	mod := ""
	if b.modified {
		mod = " (modified)"
	}
	return fmt.Sprintf("shardd %s commit %s%s %s %s", b.version, b.commit, mod, b.goVersion, b.platform)
}

// runVersion is `shardd version`, the same as shardd --version.
func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newCommandFlags("version")
	if _, code, ok := parseCommandFlags(fs, args, 0, stdout, stderr); !ok {
		return code
	}
	fmt.Fprintln(stdout, readBuildInfo())
	return exitOK
}
