package shard

import (
	"os"
	"syscall"

	"golang.org/x/sys/windows"
)

// soExclusiveAddrUse is SO_EXCLUSIVEADDRUSE, defined by winsock2.h as
// ((int)(~SO_REUSEADDR)); golang.org/x/sys/windows does not name it.
const soExclusiveAddrUse = ^windows.SO_REUSEADDR

// control sets SO_EXCLUSIVEADDRUSE on every shard socket before bind, and
// never SO_REUSEADDR. On Windows, SO_REUSEADDR lets a socket of any other
// process bind the same address and port and take its traffic (Windows has
// no SO_REUSEPORT and no uid rule); SO_EXCLUSIVEADDRUSE forbids any later
// bind to the port, by this process or another, while the socket lives.
// So one shard per address binds here: a second one fails with "address
// already in use", and --shards 1 is the setting to use.
func control(string, bool) func(network, address string, c syscall.RawConn) error {
	return controlExclusive
}

// controlTCP is control for a TCP listener: SO_EXCLUSIVEADDRUSE as well.
var controlTCP = controlExclusive

func controlExclusive(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if err := windows.SetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, soExclusiveAddrUse, 1); err != nil {
			serr = os.NewSyscallError("setsockopt SO_EXCLUSIVEADDRUSE", err)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
