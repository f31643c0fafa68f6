package mmsg

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Control-buffer sizes for [Options.Control]. SendPktinfoSpace fits the one
// IP_PKTINFO or IPV6_PKTINFO message a reply carries; RecvPktinfoSpace fits
// both, which a dual-stack socket receives with an IPv4 datagram.
var (
	SendPktinfoSpace = unix.CmsgSpace(unix.SizeofInet6Pktinfo)
	RecvPktinfoSpace = unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(unix.SizeofInet4Pktinfo)
)

// Offsets of the addresses in struct in_pktinfo {int ipi_ifindex; struct
// in_addr ipi_spec_dst, ipi_addr} and struct in6_pktinfo {struct in6_addr
// ipi6_addr; int ipi6_ifindex}: fixed by the C ABI (checked against
// unix.Inet4Pktinfo and unix.Inet6Pktinfo by the tests).
const (
	pktinfo4SpecDst = 4
	pktinfo6Addr    = 0
)

// ParsePktinfo returns the local address from an IP_PKTINFO or IPV6_PKTINFO
// control message. IP_PKTINFO wins when both are there (an IPv4 datagram on a
// dual-stack socket): its ipi_spec_dst is the local address the kernel would
// answer from, a unicast address even for a broadcast datagram, where
// IPV6_PKTINFO carries the broadcast destination itself. The messages are
// walked with unix.ParseOneSocketControlMessage, as wireguard-go's
// getGSOSize and quic-go's ReadPacket do: it checks each header's length
// against the buffer and allocates nothing.
func ParsePktinfo(oob []byte) netip.Addr {
	local, _ := ParseRecvControl(oob)
	return local
}

// PutPktinfo writes into oob (at least [SendPktinfoSpace] bytes, 8-byte
// aligned) the control message that makes a datagram sent on a socket of
// family leave from src, and returns its length; 0 when src should be left
// to the kernel (unspecified, multicast, or IPv6 on an IPv4 socket).
//
// It encodes the message into the caller's buffer instead of calling
// unix.PktInfo4/PktInfo6, which return a new slice per call: one allocation
// per reply.
func PutPktinfo(oob []byte, family int, src netip.Addr) int {
	if !src.IsValid() || src.IsUnspecified() || src.IsMulticast() {
		return 0
	}
	if family == unix.AF_INET {
		if !src.Is4() {
			return 0
		}
		d := putCmsgHdr(oob, unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo)
		a := src.As4()
		binary.NativeEndian.PutUint32(d[0:], 0) // ipi_ifindex: any
		copy(d[pktinfo4SpecDst:], a[:])
		binary.NativeEndian.PutUint32(d[8:], 0) // ipi_addr: unused on send
		return unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	}
	// On a dual-stack socket the kernel takes IPV6_PKTINFO with a mapped
	// address for IPv4 replies too (ip_cmsg_send with allow_ipv6).
	d := putCmsgHdr(oob, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo)
	a := src.As16()
	copy(d[pktinfo6Addr:], a[:])
	binary.NativeEndian.PutUint32(d[16:], 0) // ipi6_ifindex: any
	return unix.CmsgSpace(unix.SizeofInet6Pktinfo)
}

// putCmsgHdr writes a struct cmsghdr {size_t cmsg_len; int cmsg_level,
// cmsg_type} for dataLen bytes of data, in native byte order, and returns
// the data's bytes.
func putCmsgHdr(oob []byte, level, typ int32, dataLen int) []byte {
	l := unix.CmsgLen(dataLen)
	if unix.SizeofCmsghdr == 16 { // 64-bit size_t
		binary.NativeEndian.PutUint64(oob, uint64(l))
	} else {
		binary.NativeEndian.PutUint32(oob, uint32(l))
	}
	binary.NativeEndian.PutUint32(oob[unix.SizeofCmsghdr-8:], uint32(level))
	binary.NativeEndian.PutUint32(oob[unix.SizeofCmsghdr-4:], uint32(typ))
	return oob[l-dataLen : l] // CMSG_DATA: after the aligned header
}
