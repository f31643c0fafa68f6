package shard

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// control sets the options every UDP shard socket needs before bind.
// SO_REUSEPORT is required and its failure is returned. SO_REUSEADDR is never
// set on a UDP socket: when the port's sockets all have it, Linux lets a
// process of any user bind the same address and port (no uid rule, unlike
// SO_REUSEPORT), and the newest socket then takes every unicast datagram.
// Our own sockets on one port (shards, 0.0.0.0:P beside [::]:P, a restart
// beside the old process) share it through SO_REUSEPORT and the same uid.
//
// network is the one asked for ("udp", "udp4", "udp6"): Go passes "udp6" to
// the control function for a dual-stack socket too, which must get IPv4's
// options as well.
func control(network string, pktinfo bool) func(string, string, syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = setReusePort(fd); serr != nil || !pktinfo {
				return
			}
			// A wildcard socket must learn each datagram's destination address
			// so the reply leaves from it; the kernel would otherwise pick the
			// source by route, and clients drop replies from the wrong address.
			if network != "udp6" {
				if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
					serr = os.NewSyscallError("setsockopt IP_PKTINFO", err)
					return
				}
			}
			if network != "udp4" {
				if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
					serr = os.NewSyscallError("setsockopt IPV6_RECVPKTINFO", err)
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// setReusePort sets SO_REUSEPORT, which every shard socket needs; its
// failure is a *ReusePortError.
func setReusePort(fd uintptr) error {
	if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return &ReusePortError{Err: os.NewSyscallError("setsockopt SO_REUSEPORT", err)}
	}
	return nil
}

// controlTCP sets the options of a TCP shard listener before bind:
// SO_REUSEPORT (required) and SO_REUSEADDR, so a restart binds at once past
// connections in TIME_WAIT. For TCP the kernel never lets SO_REUSEADDR share
// a port with a LISTEN socket, so it opens nothing to other users (tested by
// TestAttackHijack).
func controlTCP(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if serr = setReusePort(fd); serr != nil {
			return
		}
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			serr = os.NewSyscallError("setsockopt SO_REUSEADDR", err)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// clearReuseAddr turns SO_REUSEADDR off on an inherited UDP socket (systemd
// sets it on every socket it binds, and shardd did before 12) and reports
// whether it was on. The kernel reads the flag at each later bind on the
// port, so clearing it after bind closes the hole control avoids.
func clearReuseAddr(c syscall.RawConn) (wasOn bool, err error) {
	cerr := c.Control(func(fd uintptr) {
		var v int
		if v, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR); err != nil {
			err = os.NewSyscallError("getsockopt SO_REUSEADDR", err)
			return
		}
		if wasOn = v != 0; wasOn {
			err = os.NewSyscallError("setsockopt SO_REUSEADDR", unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 0))
		}
	})
	if cerr != nil {
		return false, cerr
	}
	return wasOn, err
}

// setBuffers asks for the given buffer sizes (0: leave alone) in quic-go's
// order: plain setsockopt, read back, SO_*BUFFORCE when still short (works
// with CAP_NET_ADMIN), read back. It returns the sizes the kernel reports,
// which are twice the usable payload bytes by the kernel's own bookkeeping.
func setBuffers(c syscall.RawConn, rcv, snd int) (effRcv, effSnd int, err error) {
	cerr := c.Control(func(fd uintptr) {
		effRcv, err = setBuffer(int(fd), unix.SO_RCVBUF, unix.SO_RCVBUFFORCE, rcv)
		if err != nil {
			return
		}
		effSnd, err = setBuffer(int(fd), unix.SO_SNDBUF, unix.SO_SNDBUFFORCE, snd)
	})
	if cerr != nil {
		return 0, 0, cerr
	}
	return effRcv, effSnd, err
}

func setBuffer(fd, opt, forceOpt, want int) (int, error) {
	if want > 0 {
		// Errors here are not fatal: the read-back below reports what we got.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, want)
		// The kernel reports twice the size set (the other half is its
		// bookkeeping), so a read-back under twice the ask means the sysctl
		// cap won: then force, which needs CAP_NET_ADMIN.
		if got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt); err == nil && int64(got) < BufferReadBack(want) {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, forceOpt, want)
		}
	}
	got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt)
	if err != nil {
		return 0, os.NewSyscallError("getsockopt", err)
	}
	return got, nil
}

// Indices into the SO_MEMINFO array (include/uapi/linux/sock_diag.h).
const (
	skMeminfoRmemAlloc = 0
	skMeminfoRcvbuf    = 1
	skMeminfoDrops     = 8
	skMeminfoVars      = 9
)

// socketMem is what SO_MEMINFO reports of one socket.
type socketMem struct {
	drops, queued, rcvbuf uint64
	ok                    bool
}

// readSocketMem reads the socket's drop counter and receive queue (Linux 4.6+
// reports drops). Safe to call from any goroutine while the shard reads.
func readSocketMem(c syscall.RawConn) socketMem {
	var m socketMem
	_ = c.Control(func(fd uintptr) {
		var v [skMeminfoVars]uint32
		l := uint32(unsafe.Sizeof(v))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&v[0])), uintptr(unsafe.Pointer(&l)), 0)
		if errno != 0 || l < (skMeminfoDrops+1)*4 {
			return
		}
		m = socketMem{drops: uint64(v[skMeminfoDrops]), queued: uint64(v[skMeminfoRmemAlloc]), rcvbuf: uint64(v[skMeminfoRcvbuf]), ok: true}
	})
	return m
}

// ReusePortError means the kernel refused SO_REUSEPORT.
type ReusePortError struct{ Err error }

func (e *ReusePortError) Error() string {
	return "the kernel refused SO_REUSEPORT (" + e.Err.Error() + "); shardd needs Linux 3.9 or later"
}

func (e *ReusePortError) Unwrap() error { return e.Err }

// attachDropAll attaches a socket filter that drops every datagram arriving
// from now on. The kernel counts each one in the socket's drops (SO_MEMINFO),
// so a graceful stop can read the queue dry and close with nothing queued
// and nothing lost uncounted: what came too late is a counted kernel drop.
func attachDropAll(c syscall.RawConn) error {
	return attachProgram(c, unix.SO_ATTACH_FILTER, "SO_ATTACH_FILTER", dropAllProgram())
}

// socketInode is the socket's inode number, as /proc/net lists it.
func socketInode(c syscall.RawConn) (uint64, bool) {
	var st unix.Stat_t
	var err error
	if cerr := c.Control(func(fd uintptr) { err = unix.Fstat(int(fd), &st) }); cerr != nil || err != nil {
		return 0, false
	}
	return st.Ino, true
}

// socketOwner is the uid that owns a socket (its creator's): the uid the
// kernel compares when another socket asks to share the port.
func socketOwner(f *os.File) (int, bool) {
	rc, err := f.SyscallConn() // not Fd(), which would make it blocking
	if err != nil {
		return 0, false
	}
	var st unix.Stat_t
	if cerr := rc.Control(func(fd uintptr) { err = unix.Fstat(int(fd), &st) }); cerr != nil || err != nil {
		return 0, false
	}
	return int(st.Uid), true
}

// dupCloexec duplicates fd with close-on-exec set.
func dupCloexec(fd uintptr) (int, error) { return unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }

// inq returns how many bytes wait in a TCP socket's receive queue (SIOCINQ).
func inq(fd int) (int, bool) {
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	return n, err == nil
}

// outq returns how many bytes a TCP socket has not yet had acknowledged
// (SIOCOUTQ): replies still on their way to the client.
func outq(fd int) (int, bool) {
	n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	return n, err == nil
}

// sharedPort: shards share a port here, through SO_REUSEPORT.
const sharedPort = true
