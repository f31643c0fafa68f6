//go:build !unix

package main

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// USR1 and USR2 do not exist here. The runtime maps no console event to
// these numbers, so neither ever arrives: no reopen on a signal, and no
// upgrade.
const (
	sigUSR1 = syscall.Signal(0x1e)
	sigUSR2 = syscall.Signal(0x1f)
)

// oNoFollowNonblock has no equivalent open flags here; removePidfile still
// compares the file it opened with the name's own (Lstat), so it never
// removes through a link.
const oNoFollowNonblock = 0

var errNoUpgrade = errors.New("binary upgrades need a Unix system (descriptors passed by number, SIGUSR2)")

// forkExec cannot pass sockets by descriptor number here.
func forkExec(string, []string, []string, []uintptr) (int, error) { return 0, errNoUpgrade }

// linkCount is unknown: the file information carries no link count, so
// removePidfile leaves the pidfile (the next start replaces it).
func linkCount(fs.FileInfo) (uint64, bool) { return 0, false }

// fileOwner is not known off Unix.
func fileOwner(fs.FileInfo) (uint32, bool) { return 0, false }

// processAlive tells whether process pid exists: whether it can be opened.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}

// signalUpgrade cannot signal: there is no SIGUSR2.
func signalUpgrade(int) error { return errNoUpgrade }

// isPipe: no upgrade hands anything over here.
func isPipe(int) bool { return false }
