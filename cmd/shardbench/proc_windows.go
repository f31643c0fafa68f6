package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// newProcessGroup does nothing: Windows has no process groups to signal,
// so a peer's children are not stopped with it.
func newProcessGroup(*exec.Cmd) {}

// signalGroup stops pid alone; see signalProcess.
func signalGroup(pid int, sig syscall.Signal) error { return signalProcess(pid, sig) }

// signalProcess kills pid for SIGTERM and SIGKILL, the only two Windows can
// stand in for (TerminateProcess, no graceful stop); other signals fail.
func signalProcess(pid int, sig syscall.Signal) error {
	if sig != syscall.SIGTERM && sig != syscall.SIGKILL {
		return errors.New("signal " + sig.String() + " needs a Unix system")
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// sigUpgrade stands for SIGUSR2, which Windows lacks: signalProcess refuses it.
const sigUpgrade = syscall.Signal(0x1f)
