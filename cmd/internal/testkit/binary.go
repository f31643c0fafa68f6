package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// binDir is the directory every Binary is built into: world-readable, so
// that a test can run a binary as another user.
var binDir struct {
	once sync.Once
	path string
	err  error
}

// BinDir returns the directory binaries are built into, made on first use.
// RemoveBinDir removes it.
func BinDir(t testing.TB) string {
	t.Helper()
	binDir.once.Do(func() {
		binDir.path, binDir.err = os.MkdirTemp("", "shardd-bin-")
		if binDir.err == nil {
			binDir.err = os.Chmod(binDir.path, 0o755)
		}
	})
	if binDir.err != nil {
		t.Fatal(binDir.err)
	}
	return binDir.path
}

// RemoveBinDir removes the binaries built so far; TestMain calls it after
// m.Run. Nothing was built when no test needed a binary.
func RemoveBinDir() {
	if binDir.path != "" {
		os.RemoveAll(binDir.path)
	}
}

// Binary is a Go package built on first use, once, for the tests that run
// it as a process: a test that never asks for it pays nothing.
type Binary struct {
	name  string
	pkg   string
	flags []string

	once sync.Once
	path string
	err  error
}

// NewBinary describes the package pkg (a path as `go build` takes it,
// relative to the test's directory) built with flags into BinDir/name.
func NewBinary(name, pkg string, flags ...string) *Binary {
	return &Binary{name: name, pkg: pkg, flags: flags}
}

// Path builds the binary on the first call and returns its path. A failed
// build fails each test that asks for the binary, with the build's output.
func (b *Binary) Path(t testing.TB) string {
	t.Helper()
	dir := BinDir(t)
	b.once.Do(func() {
		path := filepath.Join(dir, b.name)
		args := append(append([]string{"build"}, b.flags...), "-o", path, b.pkg)
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building %s: %v\n%s", b.name, err, out)
			return
		}
		b.path = path
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}
