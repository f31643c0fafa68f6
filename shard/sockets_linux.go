package shard

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// SocketsOnPort lists every UDP and TCP socket, IPv4 and IPv6, bound to port,
// with its owners. What could not be read (other users' processes without
// root, descriptors that vanished) is reported in notes, not as an error.
func SocketsOnPort(port uint16) (socks []Socket, notes []string, err error) {
	return socketsOnPort(port, nil)
}

// socketsOnPort is SocketsOnPort keeping only the sockets keep accepts,
// before the owner lookups (a port with thousands of accepted connections
// then costs the guard nothing per connection).
func socketsOnPort(port uint16, keep func(*Socket) bool) (socks []Socket, notes []string, err error) {
	for _, t := range []struct{ file, proto, family string }{
		{"/proc/net/udp", "udp", "ipv4"}, {"/proc/net/udp6", "udp", "ipv6"},
		{"/proc/net/tcp", "tcp", "ipv4"}, {"/proc/net/tcp6", "tcp", "ipv6"},
	} {
		b, err := os.ReadFile(t.file)
		if err != nil {
			if strings.HasSuffix(t.family, "6") {
				notes = append(notes, fmt.Sprintf("%s: %v (IPv6 disabled?)", t.file, err))
				continue
			}
			return nil, notes, err
		}
		got, err := ParseProcNet(b, t.proto, port)
		if err != nil {
			return nil, notes, fmt.Errorf("%s: %w", t.file, err)
		}
		for i := range got {
			got[i].Family = t.family
			if keep == nil || keep(&got[i]) {
				socks = append(socks, got[i])
			}
		}
	}
	if len(socks) == 0 {
		return nil, notes, nil
	}
	byInode := map[uint64][]int{}
	for i, s := range socks {
		byInode[s.Inode] = append(byInode[s.Inode], i)
	}
	notes = append(notes, findOwners(socks, byInode)...)
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
	return socks, notes, nil
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
				s := &socks[i]
				if len(s.PIDs) == 0 || s.PIDs[len(s.PIDs)-1] != pid {
					if len(s.PIDs) == 0 {
						s.FD, _ = strconv.Atoi(e.Name())
						if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
							s.Comm = strings.TrimSpace(string(comm))
						}
					}
					s.PIDs = append(s.PIDs, pid)
				}
			}
		}
	}
	if denied > 0 {
		notes = append(notes, fmt.Sprintf("could not read the descriptors of %d processes (not root): their sockets show no pid", denied))
	}
	return notes
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
		if s.ReusePort == nil || !*s.ReusePort || (s.Proto == "tcp" && s.State != "LISTEN") || (s.Proto == "udp" && s.State != "UNCONN") {
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
