package mmsg

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Limits of one generic segmentation offload (UDP_SEGMENT) send.
const (
	// MaxSegments is the most datagrams one GSO send may carry: the
	// kernel's UDP_MAX_SEGMENTS (64; newer kernels allow 128).
	MaxSegments = 64
	// MaxSegmentBytes is the most payload one GSO send may carry: what one
	// IPv4 datagram can (65535 - 20 - 8; over IPv6 it is 65527), as
	// wireguard-go's coalesceMessages bounds it.
	MaxSegmentBytes = 1<<16 - 1 - 20 - 8
)

// SegmentSpace is the control-buffer bytes of one UDP_SEGMENT message, to
// add to [Options.Control] for a batch that sends with GSO.
var SegmentSpace = unix.CmsgSpace(2)

// SupportsSegment reports whether the kernel knows UDP_SEGMENT on the
// socket fd (Linux 4.18 and later), asked as wireguard-go's
// supportsUDPOffload does: a getsockopt that fails with ENOPROTOOPT on an
// older kernel. Whether the path can take GSO sends (checksum offload on
// the device) only a send can tell: it fails with EIO.
func SupportsSegment(fd uintptr) bool {
	_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	return err == nil
}

// Gather makes datagram i carry iovecs first..first+n-1 (each set with
// [Batch.SetBuf]) as its data: buffers gathered into one datagram, or into
// one GSO send with [Batch.SetSegment]. Until it is called, datagram i
// carries iovec i alone; a batch that uses Gather must call it for every
// datagram it sends.
func (b *Batch) Gather(i, first, n int) {
	h := &b.hdrs[i].Hdr
	h.Iov = &b.iovs[first]
	h.SetIovlen(n)
}

// Extend grows iovec i over p when p starts where iovec i's buffer ends (two
// replies built one after the other in one slab), so that contiguous
// buffers travel as one iovec; false, and nothing changed, otherwise. The
// addresses are compared as integers: no pointer past either buffer is made.
func (b *Batch) Extend(i int, p []byte) bool {
	v := &b.iovs[i]
	if len(p) == 0 || v.Base == nil || uintptr(unsafe.Pointer(v.Base))+uintptr(v.Len) != uintptr(unsafe.Pointer(unsafe.SliceData(p))) {
		return false
	}
	v.SetLen(int(v.Len) + len(p))
	return true
}

// ClearControl empties datagram i's control buffer: no source address, no
// segmentation. [Batch.SetPktinfo] sets it anew.
func (b *Batch) ClearControl(i int) { b.hdrs[i].Hdr.SetControllen(0) }

// SetSegment appends a UDP_SEGMENT control message to datagram i's control
// (after what [Batch.SetPktinfo] put there, so call it second): the kernel
// cuts the datagram's data into datagrams of size bytes each, the last one
// possibly shorter. The batch needs [SegmentSpace] more control bytes per
// datagram than its pktinfo takes. The data must not exceed [MaxSegments]
// segments nor [MaxSegmentBytes].
func (b *Batch) SetSegment(i, size int) {
	h := &b.hdrs[i].Hdr
	at := int(h.Controllen) // a multiple of 8: CmsgSpace values only
	d := putCmsgHdr(b.oob[i*b.oobSpace+at:], unix.IPPROTO_UDP, unix.UDP_SEGMENT, 2)
	binary.NativeEndian.PutUint16(d, uint16(size))
	h.SetControllen(at + SegmentSpace)
}
