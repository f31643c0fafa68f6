package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/shardd/shardd/shard"
	"github.com/shardd/shardd/shard/sockinfo"
)

// xdpOnPort is a shardd XDP program that redirects the inspected port
// (shardd --xdp), as inspect shows it.
type xdpOnPort struct {
	shard.XDPAttachment
	addrs []string // its listeners, sorted
}

// xdpEntry is what `inspect --json` adds to an AF_XDP socket's entry (proto
// "xdp"), or to the program's own entry when its sockets cannot be listed.
type xdpEntry struct {
	Iface        string   `json:"iface"`
	Queue        *int     `json:"queue,omitempty"`
	ProgramID    uint32   `json:"program_id"`
	LinkID       uint32   `json:"link_id"`
	Listeners    []string `json:"listeners"`
	SocketsError string   `json:"sockets_error,omitempty"`
}

// xdpPrograms lists the shardd XDP programs that redirect port. Listing
// them needs CAP_BPF; without it, or off Linux, the list is empty.
func xdpPrograms(port uint16) []xdpOnPort {
	list, err := shard.XDPAttachments()
	if err != nil && len(list) == 0 {
		return nil
	}
	var out []xdpOnPort
	for _, a := range list {
		x := xdpOnPort{XDPAttachment: a}
		match := false
		for _, l := range a.Listeners {
			x.addrs = append(x.addrs, l.String())
			match = match || l.Port() == port
		}
		if match {
			slices.Sort(x.addrs)
			out = append(out, x)
		}
	}
	return out
}

// printXDP prints the programs with their AF_XDP sockets.
func printXDP(w io.Writer, progs []xdpOnPort) {
	for _, a := range progs {
		fmt.Fprintf(w, "XDP program %d (link %d) on %s redirects UDP to %s\n", a.ProgramID, a.LinkID, a.Iface, strings.Join(a.addrs, " "))
		if a.SocketsErr != nil {
			fmt.Fprintf(w, "  AF_XDP sockets: not listed (%v)\n", a.SocketsErr)
			continue
		}
		for _, s := range a.Sockets {
			fmt.Fprintf(w, "  AF_XDP socket inode %d: queue %d, uid %d\n", s.Inode, s.Queue, s.UID)
		}
	}
}

// xdpJSON gives the programs' entries for `inspect --json`: one per AF_XDP
// socket, or one for the program when its sockets cannot be listed.
func xdpJSON(progs []xdpOnPort) []inspectedSocket {
	var out []inspectedSocket
	for _, a := range progs {
		e := xdpEntry{Iface: a.Iface, ProgramID: a.ProgramID, LinkID: a.LinkID, Listeners: a.addrs}
		if a.SocketsErr != nil || len(a.Sockets) == 0 {
			if a.SocketsErr != nil {
				e.SocketsError = a.SocketsErr.Error()
			}
			out = append(out, inspectedSocket{Socket: sockinfo.Socket{Proto: "xdp"}, XDP: &e})
			continue
		}
		for _, s := range a.Sockets {
			se := e
			q := s.Queue
			se.Queue = &q
			out = append(out, inspectedSocket{Socket: sockinfo.Socket{Proto: "xdp", Inode: s.Inode, UID: s.UID}, XDP: &se})
		}
	}
	return out
}
