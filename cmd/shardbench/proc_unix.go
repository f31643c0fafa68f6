//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// newProcessGroup makes cmd the leader of a process group of its own, so
// that signalGroup reaches the children it starts (a peer's workers) too.
func newProcessGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// signalGroup sends sig to the process group led by pid (one we started).
func signalGroup(pid int, sig syscall.Signal) error { return syscall.Kill(-pid, sig) }

// signalProcess sends sig to pid.
func signalProcess(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }

// sigUpgrade asks shardd for a binary upgrade.
const sigUpgrade = syscall.SIGUSR2
