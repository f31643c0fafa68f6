//go:build !unix

package main

import "os"

// takeActivated finds no sockets: systemd socket activation passes
// descriptors by number, which only Unix systems have. The variables are
// cleared all the same, so an upgrade's child never sees them.
func takeActivated() ([]activatedSocket, error) {
	_ = os.Unsetenv("LISTEN_PID")
	_ = os.Unsetenv("LISTEN_FDS")
	_ = os.Unsetenv("LISTEN_FDNAMES")
	return nil, nil
}
