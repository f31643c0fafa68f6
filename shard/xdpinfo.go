package shard

import "net/netip"

// XDPAttachment is a shardd XDP program attached to an interface, as the
// kernel reports it (for shardd inspect): the listeners it redirects and
// the AF_XDP sockets bound to the interface.
type XDPAttachment struct {
	Iface     string
	ProgramID uint32
	LinkID    uint32
	Listeners []netip.AddrPort // an unspecified address is a wildcard of its family
	Sockets   []XDPSocket
	// SocketsErr says why Sockets could not be listed (a kernel without
	// AF_XDP socket diagnostics).
	SocketsErr error
}

// XDPSocket is one AF_XDP socket of an attachment's interface.
type XDPSocket struct {
	Inode uint64
	Queue int
	UID   int
}
