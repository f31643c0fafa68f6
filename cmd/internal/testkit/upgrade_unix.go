//go:build unix

package testkit

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Upgrades drives USR2 upgrades of a daemon through its pidfile, and kills
// every process it saw at the test's end (one left running by a failed
// test must not hold the port).
type Upgrades struct {
	pidfile string
	pids    []int
}

// NewUpgrades follows the daemon whose pidfile is path.
func NewUpgrades(t testing.TB, path string) *Upgrades {
	u := &Upgrades{pidfile: path}
	t.Cleanup(func() {
		for _, p := range u.pids {
			_ = syscall.Kill(p, syscall.SIGKILL) // the processes this test's upgrades started
		}
	})
	return u
}

// Pid is the pid the pidfile names, 0 while it names none.
func (u *Upgrades) Pid() int {
	b, _ := os.ReadFile(u.pidfile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Upgrade waits until the pidfile names a process (shardd writes it once
// it serves, after its "listening" lines), sends that process USR2 and
// waits until the pidfile names another one; it returns the old pid.
func (u *Upgrades) Upgrade(t testing.TB) int {
	t.Helper()
	PollFor(t, "the pidfile "+u.pidfile+" to name a process", WaitTimeout, func() bool { return u.Pid() > 1 }) // kill(0) would signal this test's own process group
	old := u.Pid()
	u.pids = append(u.pids, old)
	if err := syscall.Kill(old, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	PollFor(t, "the new process in the pidfile", WaitTimeout, func() bool { p := u.Pid(); return p != old && p != 0 })
	u.pids = append(u.pids, u.Pid()) // killed at the end even if the test stops here
	return old
}

// Last is the process serving now (followed to the test's end since the
// upgrade that started it).
func (u *Upgrades) Last() int { return u.Pid() }
