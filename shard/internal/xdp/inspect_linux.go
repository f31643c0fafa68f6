package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Attachment is one shardd program attached to an interface, as the
// kernel reports it: for `shardd inspect`.
type Attachment struct {
	Iface     string
	Ifindex   int
	ProgramID uint32
	LinkID    uint32
	Listeners []netip.AddrPort // from the ports map (a wildcard listener's local addresses)
	Sockets   []SocketInfo     // the AF_XDP sockets bound to the interface
}

// SocketInfo is one AF_XDP socket as sock_diag reports it.
type SocketInfo struct {
	Inode   uint64
	Ifindex int
	Queue   int
	UID     int
	Stats   Stats
}

const programName = "shardd_xdp"

// Attached lists the shardd programs attached to interfaces (bpf links of
// type XDP whose program is shardd's) with their listeners, and the
// sockets of socks bound to each interface (Sockets). Links are global: an
// interface index is resolved in the caller's network namespace. Needs
// CAP_BPF (or root).
func Attached(socks []SocketInfo) ([]Attachment, error) {
	var out []Attachment
	var it link.Iterator
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || info.Type != link.XDPType {
			continue
		}
		prog, err := ebpf.NewProgramFromID(info.Program)
		if err != nil {
			continue
		}
		pinfo, err := prog.Info()
		_ = prog.Close()
		if err != nil || pinfo.Name != programName {
			continue
		}
		a := Attachment{ProgramID: uint32(info.Program), LinkID: uint32(info.ID)}
		if x := info.XDP(); x != nil {
			a.Ifindex = int(x.Ifindex)
		}
		if ifi, err := net.InterfaceByIndex(a.Ifindex); err == nil {
			a.Iface = ifi.Name
		}
		a.Listeners = listeners(pinfo)
		for _, s := range socks {
			if s.Ifindex == a.Ifindex {
				a.Sockets = append(a.Sockets, s)
			}
		}
		out = append(out, a)
	}
	return out, it.Err()
}

// listeners reads the program's ports map.
func listeners(pinfo *ebpf.ProgramInfo) []netip.AddrPort {
	ids, _ := pinfo.MapIDs()
	var out []netip.AddrPort
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			continue
		}
		mi, err := m.Info()
		if err == nil && mi.Name == "shardd_ports" {
			var k [keyLen]byte
			var v [1]byte
			for iter := m.Iterate(); iter.Next(&k, &v); {
				out = append(out, keyAddr(k))
			}
		}
		_ = m.Close()
	}
	return out
}

// keyAddr decodes a ports-map key.
func keyAddr(k [keyLen]byte) netip.AddrPort {
	port := binary.BigEndian.Uint16(k[0:2])
	if k[2] == 4 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(k[4:8])), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(k[4:20])), port)
}

// sock_diag for AF_XDP (linux/xdp_diag.h).
const (
	sockDiagByFamily = 20
	xdpShowInfo      = 1 << 0
	xdpShowStats     = 1 << 4
	xdpDiagInfo      = 1
	xdpDiagUID       = 2
	xdpDiagStats     = 9
	xdpDiagMsgLen    = 16
)

// ErrNoSocketDiag is Sockets' error on a kernel built without
// CONFIG_XDP_SOCKETS_DIAG (the xsk_diag module).
var ErrNoSocketDiag = errors.New("this kernel does not list AF_XDP sockets (no CONFIG_XDP_SOCKETS_DIAG, module xsk_diag)")

// Sockets lists the AF_XDP sockets of this network namespace (sock_diag).
func Sockets() ([]SocketInfo, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, os.NewSyscallError("socket NETLINK_SOCK_DIAG", err)
	}
	defer unix.Close(fd)
	req := make([]byte, unix.NLMSG_HDRLEN+24)
	h := (*unix.NlMsghdr)(unsafe.Pointer(&req[0]))
	*h = unix.NlMsghdr{Len: uint32(len(req)), Type: sockDiagByFamily, Flags: unix.NLM_F_REQUEST | unix.NLM_F_DUMP, Seq: 1}
	req[unix.NLMSG_HDRLEN] = unix.AF_XDP
	binary.NativeEndian.PutUint32(req[unix.NLMSG_HDRLEN+8:], xdpShowInfo|xdpShowStats)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, os.NewSyscallError("sendto sock_diag", err)
	}
	var out []SocketInfo
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return out, os.NewSyscallError("recvfrom sock_diag", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return out, err
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				errno := unix.Errno(-int32(binary.NativeEndian.Uint32(m.Data)))
				if errno == unix.ENOENT {
					return out, ErrNoSocketDiag
				}
				return out, fmt.Errorf("sock_diag for AF_XDP: %w", errno)
			}
			if s, ok := parseDiag(m.Data); ok {
				out = append(out, s)
			}
		}
	}
}

// parseDiag reads one xdp_diag_msg and its attributes.
func parseDiag(b []byte) (SocketInfo, bool) {
	if len(b) < xdpDiagMsgLen {
		return SocketInfo{}, false
	}
	s := SocketInfo{Inode: uint64(binary.NativeEndian.Uint32(b[4:8])), UID: -1}
	for b = b[xdpDiagMsgLen:]; len(b) >= 4; {
		l, typ := int(binary.NativeEndian.Uint16(b[0:2])), binary.NativeEndian.Uint16(b[2:4])
		if l < 4 || l > len(b) {
			break
		}
		v := b[4:l]
		switch {
		case typ == xdpDiagInfo && len(v) >= 8:
			s.Ifindex, s.Queue = int(binary.NativeEndian.Uint32(v[0:4])), int(binary.NativeEndian.Uint32(v[4:8]))
		case typ == xdpDiagUID && len(v) >= 4:
			s.UID = int(binary.NativeEndian.Uint32(v))
		case typ == xdpDiagStats && len(v) >= 48:
			u := func(i int) uint64 { return binary.NativeEndian.Uint64(v[8*i:]) }
			s.Stats = Stats{RxDropped: u(0), RxInvalid: u(1), RxRingFull: u(2), FillRingEmpty: u(3), TxInvalid: u(4), TxRingEmpty: u(5)}
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return s, true
}
