//go:build linux

package main

import (
	"os"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
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
	dir := rawFD()
	defer func() {
		if _, err := unix.FcntlInt(uintptr(dir), unix.F_GETFD, 0); err == nil {
			_ = syscall.Close(dir) // no pipe: left open by takeInherited
		}
	}()
	for _, keysFD := range []string{strconv.Itoa(dir), "pipe"} {
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

// TestTicketKeysStaleDescriptorLeftAlone: SHARDD_TICKET_KEYS_FD left in the
// environment by a process that did not know it (an older shardd between
// two upgrades: it neither reads nor unsets it) names whatever holds that
// number in this process, such as an inherited socket. A descriptor that
// is no pipe is neither read (a UDP socket's datagrams would be eaten) nor
// closed (the socket would be lost): the start goes on with new keys.
func TestTicketKeysStaleDescriptorLeftAlone(t *testing.T) {
	sock, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	open := func() bool {
		_, err := unix.FcntlInt(uintptr(sock), unix.F_GETFD, 0)
		return err == nil
	}
	defer func() {
		if open() {
			_ = syscall.Close(sock)
		}
	}()
	ready, err := syscall.Open(t.TempDir(), syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envReady, strconv.Itoa(ready))
	t.Setenv(envTicketKeys, strconv.Itoa(sock))
	in, err := takeInherited()
	if err != nil || in == nil {
		t.Fatalf("%v (inherited %v); want the start to go on", err, in)
	}
	_ = in.ready.Close()
	if !open() {
		t.Fatal("the socket named by a stale SHARDD_TICKET_KEYS_FD was closed")
	}
	if in.ticketKeys != nil || in.ticketKeysErr == nil {
		t.Fatalf("keys %x, error %v; want no keys and the reason", in.ticketKeys, in.ticketKeysErr)
	}
}
