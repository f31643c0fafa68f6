package shard

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/packet"
)

// dualStackOOB is the control data a dual-stack socket receives with an
// IPv4 datagram: IPV6_PKTINFO (a mapped address) and then IP_PKTINFO.
func dualStackOOB() []byte {
	oob := unix.PktInfo6(&unix.Inet6Pktinfo{Addr: netip.MustParseAddr("::ffff:192.0.2.9").As16()})
	return append(oob, unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: [4]byte{127, 0, 0, 1}, Addr: [4]byte{127, 0, 0, 1}})...)
}

func TestParsePktinfoDualStack(t *testing.T) {
	if got := parsePktinfo(dualStackOOB()); got != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("parsePktinfo(IPV6_PKTINFO + IP_PKTINFO) = %v, want IP_PKTINFO's ipi_spec_dst 127.0.0.1", got)
	}
	v6only := unix.PktInfo6(&unix.Inet6Pktinfo{Addr: netip.MustParseAddr("2001:db8::7").As16()})
	if got := parsePktinfo(v6only); got != netip.MustParseAddr("2001:db8::7") {
		t.Fatalf("parsePktinfo(IPV6_PKTINFO) = %v", got)
	}
}

// BenchmarkParsePktinfo measures the control-message walk of one datagram
// on a dual-stack socket (two messages, the second one wins).
func BenchmarkParsePktinfo(b *testing.B) {
	oob := dualStackOOB()
	b.ReportAllocs()
	var a netip.Addr
	for b.Loop() {
		a = parsePktinfo(oob)
	}
	if a != netip.MustParseAddr("127.0.0.1") {
		b.Fatal(a)
	}
}

// BenchmarkShardLoopPktinfo is BenchmarkShardLoop's echo on a wildcard
// (dual-stack) listener, where every datagram carries PKTINFO control
// messages that the receive path parses and every reply sets its source.
func BenchmarkShardLoopPktinfo(b *testing.B) {
	const perStep = 64
	r := newLoopRig(b, ":0", packet.Echo{}, perStep, 64)
	r.step(b)
	b.ReportAllocs()
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i += perStep {
		r.step(b)
	}
}
