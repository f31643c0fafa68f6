package netnstest

import (
	"fmt"
	"net/netip"
	"os"
	"testing"
)

// Pair is two namespaces of the test's own joined by a veth pair, so that
// traffic over a real Ethernet device (XDP, GRO) stays inside the test: A
// (the client side) and B (the server side), addressed from the
// benchmarking ranges 198.18.0.0/24 (RFC 2544) and 2001:2::/64 (RFC 5180).
type Pair struct {
	A, B       *NS
	DevA, DevB string
	A4, B4     netip.Addr // IPv4 addresses of DevA and DevB
	A6, B6     netip.Addr // IPv6 addresses of DevA and DevB
	ifindexB   int
}

// NewPair creates the namespaces (as New does: deleted by name at the
// test's end, and with them the pair) and a veth pair with queues receive
// and transmit queues per end (0: one), both up with their addresses (IPv6
// without duplicate address detection, usable at once).
func NewPair(t testing.TB, queues int) *Pair {
	t.Helper()
	p := &Pair{
		A: New(t, "pair-a"), B: New(t, "pair-b"),
		A4: netip.MustParseAddr("198.18.0.1"), B4: netip.MustParseAddr("198.18.0.2"),
		A6: netip.MustParseAddr("2001:2::1"), B6: netip.MustParseAddr("2001:2::2"),
	}
	// The names need only be free inside the namespaces; these say which
	// pair a device is in the output of a tool that shows it.
	id := fmt.Sprintf("%d-%d", os.Getpid()%100000, p.B.n)
	p.DevA, p.DevB = "sxa"+id, "sxb"+id
	Veth(t, p.A, p.DevA, p.B, p.DevB, queues)
	p.A.AddAddr(t, p.DevA, netip.PrefixFrom(p.A4, 24))
	p.B.AddAddr(t, p.DevB, netip.PrefixFrom(p.B4, 24))
	p.A.AddAddr(t, p.DevA, netip.PrefixFrom(p.A6, 64))
	p.B.AddAddr(t, p.DevB, netip.PrefixFrom(p.B6, 64))
	p.ifindexB = p.B.Ifindex(t, p.DevB)
	return p
}

// IfindexB is DevB's interface index in B.
func (p *Pair) IfindexB() int { return p.ifindexB }
