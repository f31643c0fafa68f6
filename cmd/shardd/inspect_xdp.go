package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/shardd/shardd/shard"
)

// printXDP prints the shardd XDP programs that redirect port, with their
// AF_XDP sockets (shardd --xdp). Listing them needs CAP_BPF; without it,
// or off Linux, nothing is printed.
func printXDP(w io.Writer, port uint16) {
	list, err := shard.XDPAttachments()
	if err != nil && len(list) == 0 {
		return
	}
	for _, a := range list {
		var addrs []string
		match := false
		for _, l := range a.Listeners {
			addrs = append(addrs, l.String())
			match = match || l.Port() == port
		}
		if !match {
			continue
		}
		slices.Sort(addrs)
		fmt.Fprintf(w, "XDP program %d (link %d) on %s redirects UDP to %s\n", a.ProgramID, a.LinkID, a.Iface, strings.Join(addrs, " "))
		if a.SocketsErr != nil {
			fmt.Fprintf(w, "  AF_XDP sockets: not listed (%v)\n", a.SocketsErr)
			continue
		}
		for _, s := range a.Sockets {
			fmt.Fprintf(w, "  AF_XDP socket inode %d: queue %d, uid %d\n", s.Inode, s.Queue, s.UID)
		}
	}
}
