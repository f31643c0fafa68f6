package metrics

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// pending reports whether c has bytes waiting in its receive queue
// (SIOCINQ): a request that has arrived but not yet been read.
func pending(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	if err := rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		return false
	}
	return n > 0
}
