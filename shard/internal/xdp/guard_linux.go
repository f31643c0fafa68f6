package xdp

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// ErrHostNamespace is what Open and Attach return in a test binary on a
// thread in the namespace the test binary started in (the host's).
var ErrHostNamespace = errors.New("xdp: a test may not open an AF_XDP socket or attach a program in the host's network namespace: do it on a thread in a namespace the test created (netnstest)")

// startNamespace is the network namespace the test binary started in
// (the machine's, or its container's), read at init, before any test
// moves a thread; errStart is why it could not be read.
var startNamespace, errStart = func() (unix.Stat_t, error) {
	var st unix.Stat_t
	if !testing.Testing() {
		return st, nil
	}
	err := unix.Stat("/proc/thread-self/ns/net", &st)
	return st, err
}()

// checkNamespace keeps tests off the machine's own interfaces: in a test
// binary it refuses a thread in the namespace the binary started in, where
// an interface index names a real interface (a socket belongs to the
// namespace of the thread that opened it, a program attaches in that of
// the thread that attaches it). Go starts new threads from a template
// thread in the process's first namespace, so a goroutine that is not the
// one netnstest moved runs there. Outside tests it does nothing.
func checkNamespace() error {
	if !testing.Testing() {
		return nil
	}
	var self unix.Stat_t
	err := errStart
	if err == nil {
		err = unix.Stat("/proc/thread-self/ns/net", &self)
	}
	if err != nil {
		return fmt.Errorf("%w (%w)", ErrHostNamespace, os.NewSyscallError("stat the network namespace", err))
	}
	if self.Dev == startNamespace.Dev && self.Ino == startNamespace.Ino {
		return ErrHostNamespace
	}
	return nil
}
