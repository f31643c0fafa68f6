// Package sockinfo inspects the sockets bound to a port, as Linux lists
// them: the kernel's tables /proc/net/udp, udp6, tcp and tcp6 (read with
// github.com/prometheus/procfs), the processes holding each socket
// (/proc/*/fd), each socket's SO_REUSEPORT (read through pidfd_getfd for
// another process's socket) and the reuseport groups they form.
//
// shard uses it to refuse steering a port that other processes share and to
// report sockets that can take a listener's traffic; shardd inspect prints
// it. Which sockets count as one's own is the caller's to say: it passes an
// Inodes set (a process serving 0.0.0.0:53 and [::]:53 passes both
// listeners' sockets); nothing is remembered process-wide.
//
// Elsewhere than on Linux every listing returns an error.
package sockinfo

import (
	"fmt"
	"net/netip"
	"strings"
)

// Socket is one socket bound to a port, as the kernel lists it in
// /proc/net/{udp,udp6,tcp,tcp6} plus what /proc/*/fd says of its owners.
type Socket struct {
	Proto     string         `json:"proto"`  // "udp" or "tcp"
	Family    string         `json:"family"` // "ipv4" or "ipv6" (the table it came from)
	Local     netip.AddrPort `json:"local"`
	Remote    netip.AddrPort `json:"remote"`
	State     string         `json:"state"` // LISTEN, ESTABLISHED, ... ; UNCONN or ESTABLISHED for UDP
	Inode     uint64         `json:"inode"`
	UID       int            `json:"uid"`
	User      string         `json:"user,omitempty"`
	RxQueue   uint64         `json:"rx_queue"`
	TxQueue   uint64         `json:"tx_queue"`
	Drops     uint64         `json:"drops"` // UDP only
	PIDs      []int          `json:"pids,omitempty"`
	Comm      string         `json:"process,omitempty"`
	FD        int            `json:"-"`                   // one of its descriptors in PIDs[0], or -1
	ReusePort *bool          `json:"reuseport,omitempty"` // nil: could not be read
	Group     string         `json:"group,omitempty"`     // sockets of one reuseport group share a label
}

// Inodes is a set of socket inode numbers (as /proc/net lists them and
// fstat returns them): the sockets a caller counts as its own. A nil set
// holds nothing.
type Inodes map[uint64]struct{}

// Add puts inos in the set; 0 (an inode that could not be read) is skipped.
func (o Inodes) Add(inos ...uint64) {
	for _, ino := range inos {
		if ino != 0 {
			o[ino] = struct{}{}
		}
	}
}

// Has reports whether ino is in the set.
func (o Inodes) Has(ino uint64) bool {
	_, ok := o[ino]
	return ok
}

// Describe names sockets for an error or a log line: transport, local
// address, uid and owner of each.
func Describe(socks []Socket) string {
	var parts []string
	for _, s := range socks {
		owner := "pid unknown"
		if len(s.PIDs) > 0 {
			owner = fmt.Sprintf("pid %d (%s)", s.PIDs[0], s.Comm)
		}
		parts = append(parts, fmt.Sprintf("%s %s uid %d %s", s.Proto, s.Local, s.UID, owner))
	}
	return strings.Join(parts, "; ")
}

// listening reports whether s takes new traffic on its port: an unconnected
// UDP socket or a TCP listener (accepted TCP connections share the port
// but never receive another client's traffic).
func (s *Socket) listening() bool {
	return (s.Proto == "udp" && s.State == "UNCONN") || (s.Proto == "tcp" && s.State == "LISTEN")
}

// overlaps reports whether traffic for local could be delivered to s: the
// same port, a family that can carry it, and either the same address or a
// wildcard on one side. An IPv4 socket never gets IPv6 traffic; an IPv6
// wildcard may be dual-stack, which /proc does not say, so it counts.
func (s *Socket) overlaps(local netip.AddrPort) bool {
	if s.Local.Port() != local.Port() {
		return false
	}
	a, b := s.Local.Addr(), local.Addr()
	if s.Family == "ipv4" && b.Is6() && !b.IsUnspecified() {
		return false
	}
	if s.Family == "ipv6" && !a.Is4() && b.Is4() && !a.IsUnspecified() {
		return false
	}
	return a == b || a.IsUnspecified() || b.IsUnspecified()
}
