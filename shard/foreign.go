package shard

import (
	"maps"

	"github.com/shardd/shardd/shard/sockinfo"
)

// Inodes returns the inodes of the group's sockets, UDP then TCP (those
// that could be read): what a program serving several addresses on one
// port passes as Config.Own and to ForeignSockets of its other groups.
func (g *Group) Inodes() []uint64 {
	var inos []uint64
	for _, s := range g.shards {
		if s.inode != 0 {
			inos = append(inos, s.inode)
		}
	}
	for _, t := range g.tcp {
		if t.inode != 0 {
			inos = append(inos, t.inode)
		}
	}
	return inos
}

// ForeignSockets lists the sockets on the group's port, of the group's
// transports, that could take its traffic and are neither the group's own
// nor in own (the caller's other sockets, e.g. its other groups': 0.0.0.0:53
// and [::]:53 side by side are not foreign to each other): another process
// (of the same user, or root) that joined the reuseport group, or a more
// specific bind that the kernel prefers. notes says what could not be read
// (see sockinfo.OnPort).
func (g *Group) ForeignSockets(own sockinfo.Inodes) (foreign []sockinfo.Socket, notes []string, err error) {
	ours := maps.Clone(own)
	if ours == nil {
		ours = sockinfo.Inodes{}
	}
	ours.Add(g.Inodes()...)
	var protos []string
	if g.info.UDP {
		protos = append(protos, "udp")
	}
	if g.info.TCP {
		protos = append(protos, "tcp")
	}
	return sockinfo.Foreign(g.info.Bound, protos, ours)
}
