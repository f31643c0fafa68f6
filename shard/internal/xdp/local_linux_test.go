package xdp

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/shardd/shardd/shard/netnstest"
)

// TestWildcardRedirectsOnlyLocalDestinations: a wildcard listener's
// program redirects datagrams to B's own addresses only. A sends one to an
// address B does not have, over the veth to B's MAC (a neighbour entry, as
// a router's traffic in transit would come), IPv4 and IPv6, then one to
// B's address: the socket's first frame is the last one (the others
// passed to B's kernel, which drops them: it does not forward).
func TestWildcardRedirectsOnlyLocalDestinations(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	s := newServer(t, p, 9999)
	fields := strings.Fields(p.B.IP(t, "-br", "link", "show", p.DevB))
	if len(fields) < 3 {
		t.Fatalf("no MAC address in %q", fields)
	}
	mac := fields[2]
	other4, other6 := netip.MustParseAddr("198.18.0.9"), netip.MustParseAddr("2001:2::9")
	p.A.IP(t, "neigh", "add", other4.String(), "lladdr", mac, "dev", p.DevA)
	p.A.IP(t, "neigh", "add", other6.String(), "lladdr", mac, "dev", p.DevA)
	for _, dst := range []netip.Addr{other4, other6, p.B4} {
		c := dialFromA(t, p, netip.AddrPortFrom(dst, 9999))
		if _, err := c.Write([]byte("to " + dst.String())); err != nil {
			t.Fatal(err)
		}
	}
	if h, got := s.echoOne(t); h.Dst != netip.AddrPortFrom(p.B4, 9999) {
		t.Fatalf("the socket got %q to %v first; want only the datagram to %v", got, h.Dst, p.B4)
	}
}

// dialFromA connects a UDP socket in namespace A to dst, closed at the
// test's end.
func dialFromA(t *testing.T, p *netnstest.Pair, dst netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	var err error
	p.A.Run(t, func() { c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
