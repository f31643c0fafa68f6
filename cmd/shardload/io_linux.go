package main

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// udpMaxSegments is the kernel's cap on segments per GSO send (UDP_MAX_SEGMENTS).
const udpMaxSegments = 64

// enableGSO sets UDP_SEGMENT on a connected socket: from then on one write of
// n*size bytes leaves as n datagrams of size bytes, segmented by the kernel.
// Each segment must fit the path MTU.
func enableGSO(c *net.UDPConn, size int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if mtu, ok := pathMTU(int(fd)); ok && size > mtu {
			serr = fmt.Errorf("%d-byte datagrams do not fit the path MTU (%d bytes of payload)", size, mtu)
			return
		}
		serr = os.NewSyscallError("setsockopt UDP_SEGMENT", unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, size))
	}); err != nil {
		return err
	}
	return serr
}

// pathMTU is the UDP payload that fits the connected socket's path MTU.
func pathMTU(fd int) (int, bool) {
	if mtu, err := unix.GetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU); err == nil {
		return mtu - 20 - 8, true
	}
	if mtu, err := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU); err == nil {
		return mtu - 40 - 8, true
	}
	return 0, false
}

// disableGSO turns UDP_SEGMENT off again.
func disableGSO(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, 0)
	}); err != nil {
		return err
	}
	return serr
}

// gsoRefused tells the errors with which the kernel refuses GSO sends on a
// path that cannot take them (size over the MTU, no checksum offload).
func gsoRefused(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EIO) || errors.Is(err, unix.EMSGSIZE)
}
