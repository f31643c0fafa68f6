package sockinfo

import (
	"net"
	"net/netip"
	"testing"

	"github.com/shardd/shardd/shard/netnstest"
)

// TestScanReadsTheCallersNamespace: a socket bound inside a network
// namespace is found by a Scan run there, and not by one run outside.
// /proc/net (the main thread's namespace) missed it, and once showed a
// test namespace's tables to a whole test binary.
func TestScanReadsTheCallersNamespace(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	var c *net.UDPConn
	var inside []Socket
	var err error
	p.B.Run(t, func() {
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.B4, 0)))
		if err != nil {
			return
		}
		inside, _, err = Scan("udp", uint16(c.LocalAddr().(*net.UDPAddr).Port))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := uint16(c.LocalAddr().(*net.UDPAddr).Port)
	if len(inside) != 1 || inside[0].Local.Port() != port {
		t.Fatalf("Scan inside the namespace found %v; want the one socket on port %d", inside, port)
	}
	outside, _, err := Scan("udp", port)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range outside {
		if s.Inode == inside[0].Inode {
			t.Fatalf("Scan outside the namespace found its socket %v", s)
		}
	}
}
