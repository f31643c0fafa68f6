//go:build !linux

package shard

import (
	"errors"
	"os"
	"syscall"
)

// sharedPort: shards cannot share a port here; one shard per address binds.
const sharedPort = false

// clearReuseAddr has nothing to clear: control never set it here.
func clearReuseAddr(syscall.RawConn) (bool, error) { return false, nil }

// setBuffers leaves the buffers alone and reports them as unknown.
func setBuffers(syscall.RawConn, int, int) (int, int, error) { return 0, 0, nil }

type socketMem struct {
	drops, queued, rcvbuf uint64
	ok                    bool
}

func readSocketMem(syscall.RawConn) socketMem { return socketMem{} }

// attachDropAll is Linux's; elsewhere a stop cannot fence the queue.
func attachDropAll(syscall.RawConn) error { return nil }

func socketInode(syscall.RawConn) (uint64, bool) { return 0, false }

// socketOwner is not needed off Linux: only one shard binds there.
func socketOwner(*os.File) (int, bool) { return 0, false }

// dupCloexec is never needed off Linux: sockets are not detached there.
func dupCloexec(uintptr) (int, error) { return -1, errors.ErrUnsupported }

// inq is Linux's; elsewhere a stop reads nothing more from its connections.
func inq(int) (int, bool) { return 0, false }

// outq is Linux's; elsewhere a lingering connection closes on its timers.
func outq(int) (int, bool) { return 0, false }
