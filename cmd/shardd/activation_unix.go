//go:build unix

package main

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// takeActivated returns the sockets systemd passed (LISTEN_PID/LISTEN_FDS,
// sd_listen_fds(3)) and clears the variables so an upgrade's child does not
// see them. Descriptors that are not IP sockets are an error.
func takeActivated() ([]activatedSocket, error) {
	pid, fds := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS")
	_ = os.Unsetenv("LISTEN_PID")
	_ = os.Unsetenv("LISTEN_FDS")
	_ = os.Unsetenv("LISTEN_FDNAMES")
	if pid == "" || fds == "" || pid != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("LISTEN_FDS=%q is not a count", fds)
	}
	var out []activatedSocket
	for fd := 3; fd < 3+n; fd++ {
		unix.CloseOnExec(fd)
		typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil {
			return nil, fmt.Errorf("activated descriptor %d is not a socket: %v", fd, err)
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return nil, fmt.Errorf("activated descriptor %d: %v", fd, err)
		}
		var local netip.AddrPort
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			local = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
		case *unix.SockaddrInet6:
			local = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
		default:
			return nil, fmt.Errorf("activated descriptor %d is not an IP socket", fd)
		}
		proto := "tcp"
		if typ == unix.SOCK_DGRAM {
			proto = "udp"
		}
		out = append(out, activatedSocket{file: os.NewFile(uintptr(fd), fmt.Sprintf("systemd-%d", fd)), proto: proto, local: local})
	}
	return out, nil
}
