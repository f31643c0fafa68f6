package shard

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
)

// ownInodes holds the inodes of every socket any Group of this process
// bound: one listener's sockets are never foreign to another's
// (0.0.0.0:53 and [::]:53 side by side).
var ownInodes sync.Map // uint64 -> struct{}

// registerOwn records the socket's inode as ours and returns it (0 if it
// cannot be read).
func registerOwn(rc syscall.RawConn) uint64 {
	ino, ok := socketInode(rc)
	if !ok {
		return 0
	}
	ownInodes.Store(ino, struct{}{})
	return ino
}

func isOwnInode(ino uint64) bool {
	_, ok := ownInodes.Load(ino)
	return ok
}

// ForeignSockets lists the sockets on the group's port, of the group's
// transports, that could take its traffic and are not its own: another
// process (of the same user, or root) that joined the reuseport group, or a
// more specific bind that the kernel prefers. notes says what could not be
// read (see SocketsOnPort).
func (g *Group) ForeignSockets() (foreign []Socket, notes []string, err error) {
	socks, notes, err := socketsOnPort(g.info.Bound.Port(), (*Socket).listening)
	if err != nil {
		return nil, notes, err
	}
	for _, s := range socks {
		if !s.overlaps(g.info.Bound) || isOwnInode(s.Inode) {
			continue
		}
		if (s.Proto == "udp" && !g.info.UDP) || (s.Proto == "tcp" && !g.info.TCP) {
			continue
		}
		foreign = append(foreign, s)
	}
	return foreign, notes, nil
}

// describeSockets names sockets for an error or a log line.
func describeSockets(socks []Socket) string {
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
