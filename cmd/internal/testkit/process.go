package testkit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// WaitTimeout bounds every wait for a state of a process under test: far
// longer than anything takes on an idle machine, so that only a real hang,
// never a loaded CI machine, reaches it.
const WaitTimeout = 60 * time.Second

// LockedBuffer is a bytes.Buffer that a process's output goroutine writes
// while the test reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Process is a command started by a test that logs JSON, one object a line,
// on its stderr.
type Process struct {
	Name   string // in failure messages
	Cmd    *exec.Cmd
	Stderr *LockedBuffer       // everything it wrote to stderr
	Lines  chan map[string]any // its JSON log lines as they arrive (dropped when full)
	Exited chan struct{}       // closed once it has exited and Code is set
	Code   int
}

// Start starts cmd (its Stderr is taken over) and reads its JSON log. The
// test's cleanup kills it if it still runs.
func Start(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Name: name, Cmd: cmd, Stderr: &LockedBuffer{}, Lines: make(chan map[string]any, 256), Exited: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stderr = io.MultiWriter(p.Stderr, pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				select {
				case p.Lines <- m:
				default:
				}
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		p.Code = cmd.ProcessState.ExitCode()
		pw.Close()
		close(p.Exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.Exited:
		default:
			_ = cmd.Process.Kill() // only the process this test started
			<-p.Exited
		}
	})
	return p
}

// WaitLine returns the first log line whose msg is msg, skipping the lines
// before it.
func (p *Process) WaitLine(t testing.TB, msg string) map[string]any {
	t.Helper()
	return p.WaitLines(t, msg)[msg]
}

// WaitLines returns the first log line of each of msgs, whatever order
// they come in (events of two goroutines, such as a reload and the
// NOTIFY round it starts), skipping the other lines.
func (p *Process) WaitLines(t testing.TB, msgs ...string) map[string]map[string]any {
	t.Helper()
	got := make(map[string]map[string]any, len(msgs))
	timeout := time.After(WaitTimeout)
	for len(got) < len(msgs) {
		select {
		case m := <-p.Lines:
			msg, _ := m["msg"].(string)
			if _, seen := got[msg]; !seen && slices.Contains(msgs, msg) {
				got[msg] = m
			}
		case <-p.Exited:
			t.Fatalf("%s exited (code %d) before logging all of %q (logged %d):\n%s", p.Name, p.Code, msgs, len(got), p.Stderr)
		case <-timeout:
			t.Fatalf("%s did not log all of %q (logged %d):\n%s", p.Name, msgs, len(got), p.Stderr)
		}
	}
	return got
}

// Stop sends sig and waits (WaitTimeout) for the exit: its code and how
// long it took.
func (p *Process) Stop(t testing.TB, sig syscall.Signal) (code int, took time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited:
		return p.Code, time.Since(start)
	case <-time.After(WaitTimeout):
		t.Fatalf("%s did not exit after %v:\n%s", p.Name, sig, p.Stderr)
	}
	return -1, 0
}

// StopWithin sends sig and waits up to 20 s for the exit: a process wedged
// (on a planted file, say) never exits.
func (p *Process) StopWithin(t testing.TB, sig syscall.Signal) int {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited:
		return p.Code
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit within 20 s of %v:\n%s", p.Name, sig, p.Stderr)
	}
	return -1
}
