//go:build unix

package main

import (
	"io/fs"
	"syscall"
)

// The signals that upgrade the binary (USR2) and reopen output files (USR1).
const (
	sigUSR1 = syscall.SIGUSR1
	sigUSR2 = syscall.SIGUSR2
)

// oNoFollowNonblock opens a path without following a symbolic link at it
// and without waiting for a FIFO's writer.
const oNoFollowNonblock = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// forkExec starts argv0 with descriptors fds as 0, 1, 2, ... by number,
// without os/exec's File.Fd (which switches a socket to blocking mode).
func forkExec(argv0 string, argv, env []string, fds []uintptr) (int, error) {
	return syscall.ForkExec(argv0, argv, &syscall.ProcAttr{Env: env, Files: fds})
}

// linkCount is the number of names (hard links) of the file fi describes.
func linkCount(fi fs.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Nlink), true
}

// fileOwner is the uid that owns fi's file.
func fileOwner(fi fs.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}

// processAlive tells whether process pid exists (signal 0).
func processAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// signalUpgrade asks the daemon pid to upgrade its binary.
func signalUpgrade(pid int) error { return syscall.Kill(pid, syscall.SIGUSR2) }

// isPipe tells whether descriptor fd is open and a pipe (FIFO).
func isPipe(fd int) bool {
	var st syscall.Stat_t
	return syscall.Fstat(fd, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFIFO
}
