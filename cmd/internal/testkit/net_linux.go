package testkit

import (
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// BindReusePort binds a SO_REUSEPORT UDP socket of the test process on
// 127.0.0.1:port, as a hijacker of the daemon's user would, until the test
// ends.
func BindReusePort(t testing.TB, port int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	return fd
}

// ActivationSockets binds a UDP socket and a listening TCP socket on one
// port of host (an IPv4 address) with SO_REUSEADDR and SO_REUSEPORT, as
// systemd binds a socket unit's, for a command's ExtraFiles (descriptors 3
// and 4, LISTEN_FDS=2). The port is picked here, free for both transports:
// the TCP side may be held by a connection of an earlier test. The caller
// closes the files once the command has started.
func ActivationSockets(t testing.TB, host netip.Addr) (files []*os.File, port int) {
	t.Helper()
	ip := host.As4()
	mk := func(typ int) int {
		fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		return fd
	}
	var udp, tcp int
	for try := 0; ; try++ {
		udp = mk(unix.SOCK_DGRAM)
		if err := unix.Bind(udp, &unix.SockaddrInet4{Addr: ip}); err != nil {
			t.Fatal(err)
		}
		sa, _ := unix.Getsockname(udp)
		port = sa.(*unix.SockaddrInet4).Port
		tcp = mk(unix.SOCK_STREAM)
		err := unix.Bind(tcp, &unix.SockaddrInet4{Port: port, Addr: ip})
		if err == nil {
			break
		}
		unix.Close(udp)
		unix.Close(tcp)
		if try == 20 {
			t.Fatal(err)
		}
	}
	if err := unix.Listen(tcp, 128); err != nil {
		t.Fatal(err)
	}
	return []*os.File{os.NewFile(uintptr(udp), "udp"), os.NewFile(uintptr(tcp), "tcp")}, port
}
