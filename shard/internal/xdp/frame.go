package xdp

import (
	"encoding/binary"
	"net/netip"
)

// Header is what the shard keeps of a request's frame to answer it: the
// link-layer addresses and VLAN tag, and the datagram's addresses.
type Header struct {
	DstMAC, SrcMAC [6]byte
	VLAN           uint16 // the 802.1Q tag control information, if Tagged
	Tagged         bool
	Src, Dst       netip.AddrPort
}

// Ethernet, IP and UDP header sizes and values the codec uses.
const (
	ethLen    = 14
	vlanLen   = 4
	ipv4Len   = 20
	ipv6Len   = 40
	udpLen    = 8
	typeIPv4  = 0x0800
	typeIPv6  = 0x86dd
	typeVLAN  = 0x8100
	protoUDP  = 17
	replyTTL  = 64
	ipv4DF    = 0x4000
	fragMask  = 0x3fff // MF and the fragment offset
	ipv4Vers5 = 0x45   // version 4, no options
)

// MaxHeaders is the most header bytes a frame carries before the payload
// (Ethernet, one VLAN tag, IPv6, UDP).
const MaxHeaders = ethLen + vlanLen + ipv6Len + udpLen

// Parse reads an Ethernet frame carrying one UDP datagram (what the XDP
// program redirects) into h and returns the datagram's payload, a slice of
// frame. ok is false for anything else, and for what the kernel would drop
// (an IPv4 header with a wrong checksum, IPv6 UDP without a checksum, a
// source address that is not unicast): the
// caller counts it and drops it. The UDP checksum is not verified: frames
// from a local sender over veth carry a partial one (checksum offload).
// IPv4-mapped addresses never appear in h (an IPv4 header gives IPv4
// addresses).
func Parse(frame []byte, h *Header) (payload []byte, ok bool) {
	if len(frame) < ethLen {
		return nil, false
	}
	copy(h.DstMAC[:], frame[0:6])
	copy(h.SrcMAC[:], frame[6:12])
	typ := binary.BigEndian.Uint16(frame[12:14])
	l3 := frame[ethLen:]
	h.Tagged = false
	if typ == typeVLAN {
		if len(l3) < vlanLen {
			return nil, false
		}
		h.Tagged, h.VLAN = true, binary.BigEndian.Uint16(l3[0:2])
		typ = binary.BigEndian.Uint16(l3[2:4])
		l3 = l3[vlanLen:]
	}
	var udp []byte
	switch typ {
	case typeIPv4:
		udp, ok = parseIPv4(l3, h)
	case typeIPv6:
		udp, ok = parseIPv6(l3, h)
	}
	if !ok || len(udp) < udpLen {
		return nil, false
	}
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < udpLen || ulen > len(udp) {
		return nil, false
	}
	if typ == typeIPv6 && udp[6]|udp[7] == 0 {
		return nil, false // RFC 8200 8.1: a zero UDP checksum over IPv6 is discarded (the kernel does)
	}
	if !unicastSource(h.Src.Addr()) {
		return nil, false
	}
	h.Src = netip.AddrPortFrom(h.Src.Addr(), binary.BigEndian.Uint16(udp[0:2]))
	h.Dst = netip.AddrPortFrom(h.Dst.Addr(), binary.BigEndian.Uint16(udp[2:4]))
	return udp[udpLen:ulen:ulen], true
}

// unicastSource reports whether a can be the source of a datagram that
// came over the wire and is answered: the kernel drops a "martian" source
// (unspecified, loopback, multicast, the IPv4 broadcast address), and a
// reply to one would reach no one, or everyone.
func unicastSource(a netip.Addr) bool {
	return !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// parseIPv4 checks an IPv4 header without options or fragmentation and
// carrying UDP, sets h's addresses and returns the IP payload (trimmed to
// the total length: a frame may be padded).
func parseIPv4(b []byte, h *Header) ([]byte, bool) {
	if len(b) < ipv4Len || b[0] != ipv4Vers5 || b[9] != protoUDP ||
		binary.BigEndian.Uint16(b[6:8])&fragMask != 0 {
		return nil, false
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if total < ipv4Len || total > len(b) || fold(sum16(b[:ipv4Len])) != 0 {
		return nil, false // as the kernel's ip_rcv: a corrupt header is dropped
	}
	h.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[12:16])), 0)
	h.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[16:20])), 0)
	return b[ipv4Len:total], true
}

// parseIPv6 checks an IPv6 header whose next header is UDP, sets h's
// addresses and returns the IP payload.
func parseIPv6(b []byte, h *Header) ([]byte, bool) {
	if len(b) < ipv6Len || b[0]>>4 != 6 || b[6] != protoUDP {
		return nil, false
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if plen > len(b)-ipv6Len {
		return nil, false
	}
	h.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), 0)
	h.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[24:40])), 0)
	return b[ipv6Len : ipv6Len+plen], true
}

// HeadersLen is the length of the headers Build writes before a payload
// from src (an IPv4 or IPv6 address) with req's tagging.
func HeadersLen(req *Header, src netip.Addr) int {
	n := ethLen + udpLen + ipv4Len
	if req.Tagged {
		n += vlanLen
	}
	if !src.Is4() {
		n += ipv6Len - ipv4Len
	}
	return n
}

// LinkLen is the length of the link-layer headers of the answer to req:
// the Ethernet header and req's 802.1Q tag, if any. The rest of the frame
// (HeadersLen plus the payload, less LinkLen) is the IP packet, which the
// interface's MTU bounds; the tag does not count against it.
func LinkLen(req *Header) int {
	if req.Tagged {
		return ethLen + vlanLen
	}
	return ethLen
}

// Build writes into frame the answer to req: an Ethernet frame from req's
// destination MAC to its source MAC (with req's VLAN tag), an IPv4 or IPv6
// header from src to dst, and a UDP header with its checksum, followed by
// payload. src and dst must be of one family (IPv4 unmapped, or IPv6). It
// returns the frame's length, or 0 when frame is too short.
func Build(frame []byte, req *Header, src, dst netip.AddrPort, payload []byte) int {
	hl := HeadersLen(req, src.Addr())
	n := hl + len(payload)
	if n > len(frame) || len(payload) > 0xffff-udpLen-ipv4Len {
		return 0
	}
	copy(frame[0:6], req.SrcMAC[:])
	copy(frame[6:12], req.DstMAC[:])
	off := 12
	if req.Tagged {
		binary.BigEndian.PutUint16(frame[12:14], typeVLAN)
		binary.BigEndian.PutUint16(frame[14:16], req.VLAN)
		off += vlanLen
	}
	udpOff := hl - udpLen
	ulen := udpLen + len(payload)
	var sum uint64
	if src.Addr().Is4() {
		binary.BigEndian.PutUint16(frame[off:], typeIPv4)
		sum = putIPv4(frame[off+2:udpOff], src.Addr(), dst.Addr(), ulen)
	} else {
		binary.BigEndian.PutUint16(frame[off:], typeIPv6)
		sum = putIPv6(frame[off+2:udpOff], src.Addr(), dst.Addr(), ulen)
	}
	u := frame[udpOff:n]
	binary.BigEndian.PutUint16(u[0:2], src.Port())
	binary.BigEndian.PutUint16(u[2:4], dst.Port())
	binary.BigEndian.PutUint16(u[4:6], uint16(ulen))
	u[6], u[7] = 0, 0
	copy(u[udpLen:], payload)
	c := fold(sum + uint64(protoUDP) + uint64(ulen) + sum16(u))
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(u[6:8], c)
	return n
}

// putIPv4 writes an IPv4 header (no options, DF, TTL 64) carrying ulen
// bytes of UDP and returns the partial sum of the UDP pseudo-header's
// addresses.
func putIPv4(b []byte, src, dst netip.Addr, ulen int) uint64 {
	b[0], b[1] = ipv4Vers5, 0
	binary.BigEndian.PutUint16(b[2:4], uint16(ipv4Len+ulen))
	binary.BigEndian.PutUint16(b[4:6], 0)
	binary.BigEndian.PutUint16(b[6:8], ipv4DF)
	b[8], b[9] = replyTTL, protoUDP
	b[10], b[11] = 0, 0
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:12], fold(sum16(b[:ipv4Len])))
	return sum16(b[12:20])
}

// putIPv6 writes an IPv6 header (hop limit 64) carrying ulen bytes of UDP
// and returns the partial sum of the UDP pseudo-header's addresses.
func putIPv6(b []byte, src, dst netip.Addr, ulen int) uint64 {
	binary.BigEndian.PutUint32(b[0:4], 6<<28)
	binary.BigEndian.PutUint16(b[4:6], uint16(ulen))
	b[6], b[7] = protoUDP, replyTTL
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	return sum16(b[8:40])
}

// sum16 adds b's big-endian 16-bit words (an odd last byte padded with
// zero), 32 bits at a time, without folding.
func sum16(b []byte) uint64 {
	var s uint64
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		s += v>>32 + v&0xffffffff
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

// fold folds a sum into 16 bits and complements it: the Internet checksum.
func fold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
