package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/shardd/shardd/shard"
)

// activatedSocket is one descriptor passed by systemd socket activation.
type activatedSocket struct {
	file  *os.File
	proto string // "udp" or "tcp"
	local netip.AddrPort
}

// assignActivated gives each listener the activated sockets bound to its
// address, as shards 0, 1, ... of each transport; shards beyond them bind
// themselves (the .socket unit needs ReusePort=yes for that).
func assignActivated(socks []activatedSocket, addrs []string) (*inherited, []activatedSocket) {
	in := &inherited{listeners: map[int]map[string]*os.File{}}
	var unused []activatedSocket
	for _, s := range socks {
		matched := false
		for i, a := range addrs {
			_, ap, err := shard.ParseAddr(a)
			if err != nil || ap.Port() != s.local.Port() {
				continue
			}
			want, got := ap.Addr().Unmap(), s.local.Addr().Unmap()
			if want != got && !(want.IsUnspecified() && got.IsUnspecified()) {
				continue
			}
			if in.listeners[i] == nil {
				in.listeners[i] = map[string]*os.File{}
			}
			n := 0
			for k := range in.listeners[i] {
				if strings.HasPrefix(k, s.proto+"/") {
					n++
				}
			}
			in.listeners[i][fmt.Sprintf("%s/%d", s.proto, n)] = s.file
			matched = true
			break
		}
		if !matched {
			unused = append(unused, s)
		}
	}
	return in, unused
}

// notifier speaks systemd's sd_notify protocol on $NOTIFY_SOCKET (Type=notify).
type notifier struct{ addr string }

func newNotifier() *notifier {
	a := os.Getenv("NOTIFY_SOCKET")
	if a == "" {
		return nil
	}
	return &notifier{addr: a}
}

// send writes one state update; errors are ignored as sd_notify does.
func (n *notifier) send(state string) {
	if n == nil {
		return
	}
	addr := n.addr
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:] // abstract namespace
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}
