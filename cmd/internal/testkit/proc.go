package testkit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// CountFDs is how many descriptors pid has open.
func CountFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// must returns v, failing the test if err is not nil.
func must[T any](t testing.TB, v T, err error) T {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// FDs is CountFDs failing the test on an error.
func FDs(t testing.TB, pid int) int {
	t.Helper()
	n, err := CountFDs(pid)
	return must(t, n, err)
}

// FDsOf is a sampler of pid's descriptor count for PeakWatch (0 once the
// process is gone).
func FDsOf(pid int) func() int64 {
	return func() int64 { n, _ := CountFDs(pid); return int64(n) }
}

// OpenFDs lists the descriptor numbers pid has open.
func OpenFDs(t testing.TB, pid int) map[uint64]bool {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	used := map[uint64]bool{}
	for _, e := range ents {
		if n, err := strconv.ParseUint(e.Name(), 10, 64); err == nil {
			used[n] = true
		}
	}
	return used
}

// rss reads pid's resident memory in bytes (VmRSS).
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// RSS is pid's resident memory in bytes (VmRSS).
func RSS(t testing.TB, pid int) int64 {
	t.Helper()
	n, err := rss(pid)
	return must(t, n, err)
}

// RSSOf is a sampler of pid's resident memory in bytes for PeakWatch (0
// once the process is gone).
func RSSOf(pid int) func() int64 {
	return func() int64 { n, _ := rss(pid); return n }
}

// PeakWatch samples f now and then every interval until stop; stop returns
// the largest value seen.
func PeakWatch(every time.Duration, f func() int64) (stop func() int64) {
	var peak atomic.Int64
	peak.Store(f())
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			if v := f(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-quit:
				return
			case <-time.After(every):
			}
		}
	}()
	return func() int64 { close(quit); <-done; return peak.Load() }
}

// PollFor waits, polling every 20 ms, until cond holds; after timeout it
// fails the test naming what it waited for.
func PollFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
