package testkit

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// fatalRecorder is a testing.TB whose Fatal records the message and ends
// the goroutine, as testing.T's does, without failing the real test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

// fatalOf runs fn with a fatalRecorder and returns what it failed with.
func fatalOf(t *testing.T, fn func(testing.TB)) string {
	f := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

// TestBinaryBuildFailure: a package that does not build fails every test
// that asks for it, each with the build's output.
func TestBinaryBuildFailure(t *testing.T) {
	t.Cleanup(RemoveBinDir)
	b := NewBinary("nothing", "./no-such-package")
	for i := 0; i < 2; i++ {
		msg := fatalOf(t, func(tb testing.TB) { b.Path(tb) })
		if !strings.Contains(msg, "building nothing: exit status 1") || !strings.Contains(msg, "no-such-package") {
			t.Fatalf("call %d failed with %q; want the build's error and output", i, msg)
		}
	}
}
