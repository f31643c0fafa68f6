package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"unsafe"

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

// batchIO sends and receives batches on one connected socket without
// allocating: sendmmsg/recvmmsg over arrays built once. One goroutine may
// send while another receives: each direction has its own call state.
type batchIO struct {
	rc     syscall.RawConn
	txHdrs []unix.Mmsghdr
	txIovs []unix.Iovec
	rxHdrs []unix.Mmsghdr
	rxIovs []unix.Iovec
	rxBufs [][]byte
	tx, rx callState
	sendFn func(uintptr) bool
	recvFn func(uintptr) bool
}

// callState is one direction's syscall arguments and result.
type callState struct {
	n     int // messages in the call
	res   int
	errno syscall.Errno
}

func newBatchIO(c *net.UDPConn, batch, slot int) (*batchIO, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &batchIO{
		rc:     rc,
		txHdrs: make([]unix.Mmsghdr, batch),
		txIovs: make([]unix.Iovec, batch),
		rxHdrs: make([]unix.Mmsghdr, batch),
		rxIovs: make([]unix.Iovec, batch),
		rxBufs: make([][]byte, batch),
	}
	slab := make([]byte, batch*slot)
	for i := range batch {
		b.txHdrs[i].Hdr.Iov = &b.txIovs[i]
		b.txHdrs[i].Hdr.SetIovlen(1)
		b.rxBufs[i] = slab[i*slot : (i+1)*slot]
		b.rxIovs[i].Base = &b.rxBufs[i][0]
		b.rxIovs[i].SetLen(slot)
		b.rxHdrs[i].Hdr.Iov = &b.rxIovs[i]
		b.rxHdrs[i].Hdr.SetIovlen(1)
	}
	b.sendFn = b.send
	b.recvFn = b.recv
	return b, nil
}

func (b *batchIO) send(fd uintptr) bool {
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.txHdrs[0])), uintptr(b.tx.n), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	b.tx.res, b.tx.errno = int(r), e
	return true
}

func (b *batchIO) recv(fd uintptr) bool {
	for i := 0; i < b.rx.n; i++ {
		b.rxHdrs[i].Hdr.Flags = 0
	}
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rxHdrs[0])), uintptr(b.rx.n), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	b.rx.res, b.rx.errno = int(r), e
	return true
}

// writeBatch sends each of msgs as one datagram (or, with GSO on, one
// super-datagram each) and returns how many the kernel took.
func (b *batchIO) writeBatch(msgs [][]byte) (int, error) {
	b.tx.n = len(msgs)
	for i, m := range msgs {
		b.txIovs[i].Base = &m[0]
		b.txIovs[i].SetLen(len(m))
	}
	if err := b.rc.Write(b.sendFn); err != nil {
		return 0, err
	}
	if b.tx.errno != 0 {
		if b.tx.errno == unix.ECONNREFUSED {
			return 0, errRefused
		}
		return 0, os.NewSyscallError("sendmmsg", b.tx.errno)
	}
	return b.tx.res, nil
}

// readBatch blocks until replies arrive and returns them; the slices are
// valid until the next call.
func (b *batchIO) readBatch(out [][]byte) (int, error) {
	b.rx.n = min(len(out), len(b.rxHdrs))
	if err := b.rc.Read(b.recvFn); err != nil {
		return 0, err
	}
	if b.rx.errno != 0 {
		if b.rx.errno == unix.ECONNREFUSED {
			return 0, errRefused
		}
		return 0, os.NewSyscallError("recvmmsg", b.rx.errno)
	}
	for i := 0; i < b.rx.res; i++ {
		out[i] = b.rxBufs[i][:b.rxHdrs[i].Len]
	}
	return b.rx.res, nil
}
