//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

import "syscall"

// reusePort does nothing where SO_REUSEPORT is missing: an upgrade then
// cannot bind --xfr-listen while the old process holds it.
func reusePort(_, _ string, _ syscall.RawConn) error { return nil }
