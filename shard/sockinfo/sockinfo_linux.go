package sockinfo

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// table is one of the kernel's socket tables and the procfs method that
// reads it (udp for a UDP table, tcp for a TCP one).
type table struct {
	file, proto, family string
	udp                 func(procfs.FS) (procfs.NetUDP, error)
	tcp                 func(procfs.FS) (procfs.NetTCP, error)
}

// procfs deprecates its TCP table readers in favour of sock_diag netlink;
// they still read /proc/net/tcp{,6} correctly, with the same lines as the
// UDP tables, and a netlink client would be a second way to the same rows.
var tables = []table{
	{file: "net/udp", proto: "udp", family: "ipv4", udp: procfs.FS.NetUDP},
	{file: "net/udp6", proto: "udp", family: "ipv6", udp: procfs.FS.NetUDP6},
	//lint:ignore SA1019 see above
	{file: "net/tcp", proto: "tcp", family: "ipv4", tcp: procfs.FS.NetTCP},
	//lint:ignore SA1019 see above
	{file: "net/tcp6", proto: "tcp", family: "ipv6", tcp: procfs.FS.NetTCP6},
}

var tcpStates = map[uint64]string{
	0x01: "ESTABLISHED", 0x02: "SYN_SENT", 0x03: "SYN_RECV", 0x04: "FIN_WAIT1", 0x05: "FIN_WAIT2",
	0x06: "TIME_WAIT", 0x07: "CLOSE", 0x08: "CLOSE_WAIT", 0x09: "LAST_ACK", 0x0A: "LISTEN", 0x0B: "CLOSING",
}

// Scan lists the sockets of one transport, proto "udp" or "tcp", IPv4 and
// IPv6, whose local port is port (every socket when port is 0), as the
// kernel's tables list them: queues, drops, uid and inode, but no owners
// (OnPort and Foreign add them). A missing IPv6 table is a note, not an
// error.
//
// The tables are those of the calling thread's network namespace
// (/proc/thread-self/net), the one the caller binds sockets in: /proc/net
// is the namespace of the process's main thread, and a thread moved into
// another namespace (Go's main thread is kept, wedged, after a locked
// goroutine on it exits there) would show that namespace's tables to the
// whole process.
func Scan(proto string, port uint16) (socks []Socket, notes []string, err error) {
	runtime.LockOSThread() // the thread whose namespace is read, for the whole read
	defer runtime.UnlockOSThread()
	p, err := procfs.NewFS("/proc/thread-self")
	if err != nil { // Linux before 3.17
		p, err = procfs.NewDefaultFS()
	}
	if err != nil {
		return nil, nil, err
	}
	return scan(p, proto, port)
}

// scan is Scan on the proc file system p (a test's fake one).
func scan(p procfs.FS, proto string, port uint16) (socks []Socket, notes []string, err error) {
	for _, t := range tables {
		if t.proto != proto {
			continue
		}
		lines, err := readTable(p, t)
		if err != nil {
			if t.family == "ipv6" {
				notes = append(notes, fmt.Sprintf("%v (IPv6 disabled?)", err))
				continue
			}
			return nil, notes, err
		}
		if socks, err = appendSockets(socks, lines, t, port); err != nil {
			return nil, notes, err
		}
	}
	return socks, notes, nil
}

// readTable reads one table. procfs v0.22.0 indexes a UDP line's drops
// column without checking the line has one (a line of 10 to 12 columns
// panics); the kernel always writes it, but a malformed table is an error
// here, never a crash of the daemon's guard.
func readTable(p procfs.FS, t table) (lines procfs.NetIPSocket, err error) {
	defer func() {
		if r := recover(); r != nil {
			lines, err = nil, fmt.Errorf("/proc/%s: malformed line (%v)", t.file, r)
		}
	}()
	if t.udp != nil {
		var u procfs.NetUDP
		u, err = t.udp(p)
		lines = procfs.NetIPSocket(u)
	} else {
		var c procfs.NetTCP
		c, err = t.tcp(p)
		lines = procfs.NetIPSocket(c)
	}
	if err != nil {
		if pe := (*fs.PathError)(nil); !errors.As(err, &pe) {
			err = fmt.Errorf("/proc/%s: %w", t.file, err)
		}
	}
	return lines, err
}

// appendSockets converts the table's lines on port (all when 0) to Sockets.
func appendSockets(socks []Socket, lines procfs.NetIPSocket, t table, port uint16) ([]Socket, error) {
	for _, l := range lines {
		if l.LocalPort > 0xFFFF || l.RemPort > 0xFFFF { // procfs parses them as 64 bits
			return nil, fmt.Errorf("/proc/%s: line %d: port beyond 16 bits", t.file, l.Sl)
		}
		if port != 0 && l.LocalPort != uint64(port) {
			continue
		}
		s := Socket{
			Proto: t.proto, Family: t.family,
			Local:  addrPort(l.LocalAddr, l.LocalPort),
			Remote: addrPort(l.RemAddr, l.RemPort),
			Inode:  l.Inode, UID: int(l.UID), RxQueue: l.RxQueue, TxQueue: l.TxQueue, FD: -1,
		}
		switch name, known := tcpStates[l.St]; {
		case t.proto == "udp" && l.St == 0x01:
			s.State = "ESTABLISHED"
		case t.proto == "udp":
			s.State = "UNCONN"
		case known:
			s.State = name
		default:
			s.State = fmt.Sprintf("%02X", l.St)
		}
		if l.Drops != nil {
			s.Drops = *l.Drops
		}
		socks = append(socks, s)
	}
	return socks, nil
}

// addrPort is procfs's address and port as a netip.AddrPort; an
// IPv4-mapped IPv6 address is returned as IPv4.
func addrPort(ip []byte, port uint64) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip) // procfs returns 4 or 16 bytes
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}

// OnPort lists every UDP and TCP socket, IPv4 and IPv6, bound to port, with
// its owners, SO_REUSEPORT and reuseport group. What could not be read
// (other users' processes without root, descriptors that vanished, a
// missing IPv6 table) is reported in notes, not as an error.
func OnPort(port uint16) (socks []Socket, notes []string, err error) {
	return list(port, []string{"udp", "tcp"}, nil)
}

// Foreign lists the sockets of protos ("udp", "tcp") that could take
// traffic addressed to local and are not in own, with their owners as in
// OnPort: unconnected UDP sockets and TCP listeners on local's port whose
// address is local's, or a wildcard on either side (an IPv6 wildcard counts
// for IPv4 traffic: /proc does not say whether it is dual-stack). They are
// another process's sockets that joined a reuseport group, or a more
// specific bind that the kernel prefers.
func Foreign(local netip.AddrPort, protos []string, own Inodes) (foreign []Socket, notes []string, err error) {
	return list(local.Port(), protos, func(s *Socket) bool {
		return s.listening() && s.overlaps(local) && !own.Has(s.Inode)
	})
}

// list scans protos on port and keeps the sockets keep accepts (all when
// nil) before the owner lookups: a port with thousands of accepted
// connections then costs the guard nothing per connection.
func list(port uint16, protos []string, keep func(*Socket) bool) (socks []Socket, notes []string, err error) {
	for _, proto := range protos {
		got, n, err := Scan(proto, port)
		notes = append(notes, n...)
		if err != nil {
			return nil, notes, err
		}
		for i := range got {
			if keep == nil || keep(&got[i]) {
				socks = append(socks, got[i])
			}
		}
	}
	if len(socks) == 0 {
		return nil, notes, nil
	}
	notes = append(notes, addOwners(socks)...)
	return socks, notes, nil
}

// addOwners fills in each socket's owners (PIDs, Comm, FD), its user name,
// its SO_REUSEPORT and its reuseport group.
func addOwners(socks []Socket) (notes []string) {
	byInode := map[uint64][]int{}
	for i, s := range socks {
		byInode[s.Inode] = append(byInode[s.Inode], i)
	}
	notes = findOwners(socks, byInode)
	for i := range socks {
		s := &socks[i]
		if u, err := user.LookupId(strconv.Itoa(s.UID)); err == nil {
			s.User = u.Username
		}
		if len(s.PIDs) > 0 && s.FD >= 0 {
			s.ReusePort = readReusePort(s.PIDs[0], s.FD)
		}
	}
	groupSockets(socks)
	return notes
}

// findOwners walks /proc/*/fd for the sockets' inodes.
func findOwners(socks []Socket, byInode map[uint64][]int) (notes []string) {
	dirs, _ := filepath.Glob("/proc/[0-9]*/fd")
	denied := 0
	for _, dir := range dirs {
		pid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(dir, "/proc/"), "/fd"))
		ents, err := os.ReadDir(dir)
		if err != nil {
			if os.IsPermission(err) {
				denied++
			}
			continue
		}
		for _, e := range ents {
			link, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
			if err != nil {
				continue
			}
			for _, i := range byInode[ino] {
				addOwner(&socks[i], pid, e.Name())
			}
		}
	}
	if denied > 0 {
		notes = append(notes, fmt.Sprintf("could not read the descriptors of %d processes (not root): their sockets show no pid", denied))
	}
	return notes
}

// addOwner records that process pid holds s as descriptor fd; the first
// owner found also names the socket's process and descriptor.
func addOwner(s *Socket, pid int, fd string) {
	if len(s.PIDs) > 0 && s.PIDs[len(s.PIDs)-1] == pid {
		return
	}
	if len(s.PIDs) == 0 {
		s.FD, _ = strconv.Atoi(fd)
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
			s.Comm = strings.TrimSpace(string(comm))
		}
	}
	s.PIDs = append(s.PIDs, pid)
}

// readReusePort reads SO_REUSEPORT of a socket owned by another process:
// pidfd_getfd (Linux 5.6+) duplicates its descriptor, which needs the right
// to ptrace that process (root, or the same user without hardening).
func readReusePort(pid, fd int) *bool {
	var dup int
	if pid == os.Getpid() {
		dup = fd
	} else {
		pidfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			return nil
		}
		defer unix.Close(pidfd)
		if dup, err = unix.PidfdGetfd(pidfd, fd, 0); err != nil {
			return nil
		}
		defer unix.Close(dup)
	}
	v, err := unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_REUSEPORT)
	if err != nil {
		return nil
	}
	on := v != 0
	return &on
}

// groupSockets labels the sockets that share one reuseport group: same
// transport, local address and port, owner uid, SO_REUSEPORT on, and for
// TCP listening.
func groupSockets(socks []Socket) {
	type key struct {
		proto string
		local string
		uid   int
	}
	members := map[key][]int{}
	var order []key
	for i, s := range socks {
		if s.ReusePort == nil || !*s.ReusePort || !s.listening() {
			continue
		}
		k := key{s.Proto + s.Family, s.Local.String(), s.UID}
		if members[k] == nil {
			order = append(order, k)
		}
		members[k] = append(members[k], i)
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].proto+order[i].local < order[j].proto+order[j].local })
	perProto := map[string]int{}
	for _, k := range order {
		proto := socks[members[k][0]].Proto
		perProto[proto]++
		for _, i := range members[k] {
			socks[i].Group = fmt.Sprintf("%s-%d", proto, perProto[proto])
		}
	}
}
