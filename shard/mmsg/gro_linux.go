package mmsg

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// GROSpace is the control-buffer bytes of the UDP_GRO message a socket
// with UDP_GRO set receives with a coalesced buffer: add it to
// [Options.Control] (beside [RecvPktinfoSpace] on a wildcard socket).
var GROSpace = unix.CmsgSpace(4)

// ParseRecvControl walks a received buffer's control messages once and
// returns the local address it arrived on (as [ParsePktinfo]: IP_PKTINFO
// wins over IPV6_PKTINFO) and its UDP_GRO segment size: the length of each
// datagram the kernel coalesced into the buffer, the last one possibly
// shorter (see [Split]); 0 when the buffer is one datagram. It reads in
// place and allocates nothing.
func ParseRecvControl(oob []byte) (local netip.Addr, segSize int) {
	var v4 bool
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break
		}
		switch {
		case h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && len(data) >= 4:
			// An int (the skb's gso_size); a hostile value is refused by Split.
			segSize = int(int32(binary.NativeEndian.Uint32(data)))
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			local, v4 = netip.AddrFrom4([4]byte(data[pktinfo4SpecDst:])), true
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo && !v4:
			local = netip.AddrFrom16([16]byte(data[pktinfo6Addr:])).Unmap()
		}
		oob = rest
	}
	return local, segSize
}

// RecvControl is received datagram i's local address and UDP_GRO segment
// size, from its control messages (see [ParseRecvControl]); both zero when
// the batch has no control buffers or the datagram none.
func (b *Batch) RecvControl(i int) (local netip.Addr, segSize int) {
	if b.oob == nil {
		return netip.Addr{}, 0
	}
	return ParseRecvControl(b.oob[i*b.oobSpace:][:b.hdrs[i].Hdr.Controllen])
}

// GROOn reports whether UDP_GRO is on on a UDP socket (false where the
// kernel lacks it). A socket handed over by another process keeps it.
func GROOn(fd uintptr) bool {
	v, err := unix.GetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO)
	return err == nil && v != 0
}

// Queued reports whether a datagram (or coalesced buffer) waits in the
// socket's receive queue, without taking it; a socket it cannot ask
// (an error other than an empty queue) counts as not empty.
func Queued(fd uintptr) bool {
	var b [1]byte
	_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err != unix.EAGAIN
}

// SetGRO turns UDP generic receive offload on or off on a UDP socket: with
// it on, the kernel may hand one receive call several datagrams of one flow
// in one buffer, with their segment size in a UDP_GRO control message
// (Linux 5.0+; ENOPROTOOPT before).
func SetGRO(fd uintptr, on bool) error {
	v := 0
	if on {
		v = 1
	}
	return unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, v)
}
