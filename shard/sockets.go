package shard

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
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

var tcpStates = map[string]string{
	"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
	"06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
}

// ParseProcNet reads one /proc/net/{udp,udp6,tcp,tcp6} table and returns
// the sockets whose local port is port (every socket when port is 0).
func ParseProcNet(b []byte, proto string, port uint16) ([]Socket, error) {
	var out []Socket
	sc := bufio.NewScanner(bytes.NewReader(b))
	first := true
	for sc.Scan() {
		if first { // header
			first = false
			continue
		}
		f := bytes.Fields(sc.Bytes())
		if len(f) < 10 {
			continue
		}
		local, err := parseHexAddrPort(string(f[1]))
		if err != nil {
			return nil, err
		}
		if port != 0 && local.Port() != port {
			continue
		}
		remote, err := parseHexAddrPort(string(f[2]))
		if err != nil {
			return nil, err
		}
		s := Socket{Proto: proto, Local: local, Remote: remote, FD: -1}
		st := string(f[3])
		if proto == "udp" {
			s.State = "UNCONN"
			if st == "01" {
				s.State = "ESTABLISHED"
			}
		} else if name, ok := tcpStates[st]; ok {
			s.State = name
		} else {
			s.State = st
		}
		if tx, rx, ok := bytes.Cut(f[4], []byte(":")); ok {
			s.TxQueue, _ = strconv.ParseUint(string(tx), 16, 64)
			s.RxQueue, _ = strconv.ParseUint(string(rx), 16, 64)
		}
		s.UID, _ = strconv.Atoi(string(f[7]))
		s.Inode, _ = strconv.ParseUint(string(f[9]), 10, 64)
		if proto == "udp" && len(f) >= 13 {
			s.Drops, _ = strconv.ParseUint(string(f[12]), 10, 64)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseHexAddrPort decodes the kernel's "0100007F:14E9": the address as
// 32-bit words in host byte order (little-endian here), the port big-endian hex.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	a, p, ok := bytes.Cut([]byte(s), []byte(":"))
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("proc net: bad address %q", s)
	}
	port, err := strconv.ParseUint(string(p), 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("proc net: bad port in %q", s)
	}
	raw := make([]byte, len(a)/2)
	if len(a)%2 != 0 || len(raw) != 4 && len(raw) != 16 {
		return netip.AddrPort{}, fmt.Errorf("proc net: bad address %q", s)
	}
	if _, err := hex.Decode(raw, a); err != nil {
		return netip.AddrPort{}, fmt.Errorf("proc net: bad address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(raw[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	var ip netip.Addr
	if len(raw) == 4 {
		ip = netip.AddrFrom4([4]byte(raw))
	} else {
		ip = netip.AddrFrom16([16]byte(raw)).Unmap()
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
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
