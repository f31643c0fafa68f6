package mmsg

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// decodeSockaddr turns a kernel sockaddr (sockaddr_in or sockaddr_in6, in a
// slot the size of the larger) into an unmapped AddrPort without allocating,
// except for a zone on link-local IPv6 senders.
func decodeSockaddr(rsa *unix.RawSockaddrInet6) netip.AddrPort {
	switch rsa.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), ntohs(sa.Port))
	case unix.AF_INET6:
		ip := netip.AddrFrom16(rsa.Addr)
		if ip.Is4In6() {
			ip = ip.Unmap()
		} else if rsa.Scope_id != 0 {
			ip = ip.WithZone(strconv.FormatUint(uint64(rsa.Scope_id), 10))
		}
		return netip.AddrPortFrom(ip, ntohs(rsa.Port))
	}
	return netip.AddrPort{}
}

// encodeSockaddr writes dst in the socket's family into rsa and its length
// into h; false if it cannot be sent there.
func encodeSockaddr(h *unix.Msghdr, rsa *unix.RawSockaddrInet6, family int, dst netip.AddrPort) bool {
	ip := dst.Addr()
	if !ip.IsValid() || dst.Port() == 0 {
		h.Namelen = 0
		return false
	}
	if family == unix.AF_INET {
		if !ip.Is4() {
			h.Namelen = 0
			return false
		}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: htons(dst.Port()), Addr: ip.As4()}
		h.Namelen = unix.SizeofSockaddrInet4
		return true
	}
	*rsa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: htons(dst.Port()), Addr: ip.As16()}
	if z := ip.Zone(); z != "" {
		if id, err := strconv.ParseUint(z, 10, 32); err == nil {
			rsa.Scope_id = uint32(id)
		} else if ifi, err := net.InterfaceByName(z); err == nil {
			rsa.Scope_id = uint32(ifi.Index)
		}
	}
	h.Namelen = unix.SizeofSockaddrInet6
	return true
}

// ntohs reads a port stored in network byte order in a native uint16 field.
func ntohs(v uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], v)
	return binary.BigEndian.Uint16(b[:])
}

// htons is ntohs's inverse (the same swap).
func htons(v uint16) uint16 { return ntohs(v) }
