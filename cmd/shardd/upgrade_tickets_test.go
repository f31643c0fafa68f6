//go:build linux

package main

import (
	"os"
	"strconv"
	"syscall"
	"testing"
)

// TestTicketKeysUnreadableStillStarts: a new process that cannot read the
// session ticket keys the old one handed over (a descriptor that is no
// pipe, or no number) still takes its sockets and starts, with new keys
// and the reason kept for the log, rather than failing the upgrade.
func TestTicketKeysUnreadableStillStarts(t *testing.T) {
	// Raw descriptors, each closed once by what takes it over.
	rawFD := func() int {
		fd, err := syscall.Open(t.TempDir(), syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0) // read(2): EISDIR
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	for _, keysFD := range []string{strconv.Itoa(rawFD()), "pipe"} {
		t.Setenv(envReady, strconv.Itoa(rawFD()))
		t.Setenv(envTicketKeys, keysFD)
		in, err := takeInherited()
		if err != nil || in == nil {
			t.Fatalf("%s=%s: %v (inherited %v); want the start to go on", envTicketKeys, keysFD, err, in)
		}
		_ = in.ready.Close()
		if in.ticketKeys != nil || in.ticketKeysErr == nil {
			t.Fatalf("%s=%s: keys %x, error %v; want no keys and the reason", envTicketKeys, keysFD, in.ticketKeys, in.ticketKeysErr)
		}
		if _, set := os.LookupEnv(envTicketKeys); set {
			t.Fatalf("%s left in the environment", envTicketKeys)
		}
	}
}
