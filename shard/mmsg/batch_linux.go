package mmsg

import (
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batch is the kernel-facing arrays of one recvmmsg or sendmmsg call of up
// to Len datagrams: a header per datagram, each with one iovec and, as
// asked by [Options], a sockaddr slot and a control buffer. It is built once
// and reused for every call; a Batch is used by one goroutine at a time. A
// copy of a Batch drives the same arrays (the shard keeps its two by value,
// one pointer less per datagram).
type Batch struct {
	hdrs     []unix.Mmsghdr
	iovs     []unix.Iovec
	names    []unix.RawSockaddrInet6 // nil: no addresses (connected socket)
	oob      []byte
	oobSpace int
}

// Options says what a [Batch] carries beside the data.
type Options struct {
	// Addrs gives each datagram a sockaddr slot, for an unconnected socket:
	// the sender's address on receive ([Batch.Addr]), the destination on
	// send ([Batch.SetAddr]).
	Addrs bool
	// Control is the control-buffer bytes per datagram: [RecvPktinfoSpace]
	// to receive the local address, [SendPktinfoSpace] to choose a reply's
	// source; 0 for none.
	Control int
}

// NewBatch builds a batch of n datagrams. Each iovec points at nothing
// until [Batch.SetBuf].
func NewBatch(n int, o Options) *Batch {
	b := &Batch{hdrs: make([]unix.Mmsghdr, n), iovs: make([]unix.Iovec, n), oobSpace: o.Control}
	if o.Addrs {
		b.names = make([]unix.RawSockaddrInet6, n)
	}
	if o.Control > 0 {
		// Control messages are read in place: keep every slot 8-byte aligned.
		b.oobSpace = (o.Control + 7) &^ 7
		b.oob = make([]byte, n*b.oobSpace)
	}
	for i := range b.hdrs {
		h := &b.hdrs[i].Hdr
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		if b.names != nil {
			h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		}
		if b.oob != nil {
			h.Control = &b.oob[i*b.oobSpace] // its length says whether it is used
		}
	}
	return b
}

// Len is the most datagrams one call can carry.
func (b *Batch) Len() int { return len(b.hdrs) }

// SetBuf points datagram i's iovec at p: the buffer to receive into, or the
// data to send. An empty p sends an empty datagram.
func (b *Batch) SetBuf(i int, p []byte) {
	if len(p) > 0 {
		b.iovs[i].Base = &p[0]
	} else {
		b.iovs[i].Base = nil
	}
	b.iovs[i].SetLen(len(p))
}

// ClearBufs drops the first n iovecs' references, so that no buffer outlives
// the call that used it.
func (b *Batch) ClearBufs(n int) { clear(b.iovs[:n]) }

// Recv runs one recvmmsg(2) on fd into the first n datagrams with flags
// (MSG_DONTWAIT, MSG_WAITFORONE, MSG_TRUNC...) and returns how many came,
// or the call's errno. It first readies the headers: address and control
// lengths back to their slots' sizes, flags cleared.
func (b *Batch) Recv(fd uintptr, n, flags int) (int, syscall.Errno) {
	for i := range b.hdrs[:n] {
		h := &b.hdrs[i].Hdr
		if b.names != nil {
			h.Namelen = unix.SizeofSockaddrInet6
		}
		if b.oob != nil {
			h.SetControllen(b.oobSpace)
		}
		h.Flags = 0
	}
	r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(n), uintptr(flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), 0
}

// Send runs one sendmmsg(2) on fd over datagrams from..to-1 with flags and
// returns how many the kernel took, or the call's errno. sendmmsg reports an
// error only when the first datagram fails; a later failure ends the call
// early with a short count.
func (b *Batch) Send(fd uintptr, from, to, flags int) (int, syscall.Errno) {
	r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[from])), uintptr(to-from), uintptr(flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), 0
}

// MsgLen is datagram i's length after a call: the bytes received (the
// datagram's real length with MSG_TRUNC, which may exceed its buffer) or
// sent.
func (b *Batch) MsgLen(i int) int { return int(b.hdrs[i].Len) }

// Addr is the sender of received datagram i, unmapped (see [Options.Addrs]).
func (b *Batch) Addr(i int) netip.AddrPort { return decodeSockaddr(&b.names[i]) }

// SetAddr sets datagram i's destination for a socket of family (AF_INET or
// AF_INET6, where IPv4 goes mapped); false if dst cannot be sent there: no
// address, port 0, or IPv6 on an IPv4 socket.
func (b *Batch) SetAddr(i, family int, dst netip.AddrPort) bool {
	return encodeSockaddr(&b.hdrs[i].Hdr, &b.names[i], family, dst)
}

// SetPktinfo makes datagram i leave from src (see [PutPktinfo]) on a
// socket of family, or leaves the source to the kernel when src is not one
// to set. The batch needs [SendPktinfoSpace] of control per datagram.
func (b *Batch) SetPktinfo(i, family int, src netip.Addr) {
	b.hdrs[i].Hdr.SetControllen(PutPktinfo(b.oob[i*b.oobSpace:], family, src))
}
