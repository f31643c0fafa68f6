package mmsg

import (
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestSockaddrRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		family int
		in     string
		want   string
	}{
		{unix.AF_INET, "192.0.2.7:53", "192.0.2.7:53"},
		{unix.AF_INET6, "192.0.2.7:53", "192.0.2.7:53"}, // mapped on the wire, unmapped back
		{unix.AF_INET6, "[2001:db8::1]:65535", "[2001:db8::1]:65535"},
		{unix.AF_INET6, "[fe80::1%2]:5353", "[fe80::1%2]:5353"},
	} {
		var rsa unix.RawSockaddrInet6
		if !encodeSockaddr(&unix.Msghdr{}, &rsa, tc.family, netip.MustParseAddrPort(tc.in)) {
			t.Fatalf("encode %s in family %d refused", tc.in, tc.family)
		}
		if got := decodeSockaddr(&rsa); got.String() != tc.want {
			t.Errorf("%s -> %v, want %s", tc.in, got, tc.want)
		}
	}
	var rsa unix.RawSockaddrInet6
	for _, bad := range []netip.AddrPort{{}, netip.MustParseAddrPort("[::1]:53"), netip.MustParseAddrPort("127.0.0.1:0")} {
		if encodeSockaddr(&unix.Msghdr{}, &rsa, unix.AF_INET, bad) {
			t.Errorf("%v accepted for an IPv4 socket", bad)
		}
	}
}

func TestPktinfoRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		family int
		src    string
	}{{unix.AF_INET, "127.0.0.2"}, {unix.AF_INET6, "2001:db8::5"}, {unix.AF_INET6, "127.0.0.3"}} {
		oob := make([]byte, SendPktinfoSpace)
		n := PutPktinfo(oob, tc.family, netip.MustParseAddr(tc.src))
		if n == 0 {
			t.Fatalf("PutPktinfo(%s) wrote nothing", tc.src)
		}
		if got := ParsePktinfo(oob[:n]); got.String() != tc.src {
			t.Errorf("pktinfo %s came back as %v", tc.src, got)
		}
	}
	for _, skip := range []netip.Addr{{}, netip.IPv6Unspecified(), netip.MustParseAddr("ff02::1")} {
		if n := PutPktinfo(make([]byte, SendPktinfoSpace), unix.AF_INET6, skip); n != 0 {
			t.Errorf("PutPktinfo(%v) = %d, want 0 (leave the source to the kernel)", skip, n)
		}
	}
}

// FuzzParsePktinfo feeds arbitrary control-message bytes, as a buggy or
// hostile kernel path could, and expects no panic and no out-of-range read.
func FuzzParsePktinfo(f *testing.F) {
	seed := make([]byte, SendPktinfoSpace)
	f.Add(seed[:PutPktinfo(seed, unix.AF_INET, netip.MustParseAddr("10.0.0.1"))])
	seed6 := make([]byte, SendPktinfoSpace)
	f.Add(seed6[:PutPktinfo(seed6, unix.AF_INET6, netip.MustParseAddr("2001:db8::1"))])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, oob []byte) {
		// Control buffers are 8-byte aligned in the shard; keep the fuzzer's too.
		buf := make([]uint64, (len(oob)+7)/8)
		b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), len(buf)*8)[:len(oob)]
		copy(b, oob)
		_ = ParsePktinfo(b)
	})
}

// FuzzDecodeSockaddr decodes arbitrary sockaddr bytes.
func FuzzDecodeSockaddr(f *testing.F) {
	f.Add(make([]byte, unix.SizeofSockaddrInet6))
	f.Fuzz(func(t *testing.T, b []byte) {
		var rsa unix.RawSockaddrInet6
		copy((*[unix.SizeofSockaddrInet6]byte)(unsafe.Pointer(&rsa))[:], b)
		ap := decodeSockaddr(&rsa)
		if ap.IsValid() && ap.Addr().Is4In6() {
			t.Fatalf("decoded a mapped address: %v", ap)
		}
	})
}

// dualStackOOB is the control data a dual-stack socket receives with an
// IPv4 datagram: IPV6_PKTINFO (a mapped address) and then IP_PKTINFO.
func dualStackOOB() []byte {
	oob := unix.PktInfo6(&unix.Inet6Pktinfo{Addr: netip.MustParseAddr("::ffff:192.0.2.9").As16()})
	return append(oob, unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: [4]byte{127, 0, 0, 1}, Addr: [4]byte{127, 0, 0, 1}})...)
}

func TestParsePktinfoDualStack(t *testing.T) {
	if got := ParsePktinfo(dualStackOOB()); got != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("ParsePktinfo(IPV6_PKTINFO + IP_PKTINFO) = %v, want IP_PKTINFO's ipi_spec_dst 127.0.0.1", got)
	}
	v6only := unix.PktInfo6(&unix.Inet6Pktinfo{Addr: netip.MustParseAddr("2001:db8::7").As16()})
	if got := ParsePktinfo(v6only); got != netip.MustParseAddr("2001:db8::7") {
		t.Fatalf("ParsePktinfo(IPV6_PKTINFO) = %v", got)
	}
}

// BenchmarkParsePktinfo measures the control-message walk of one datagram
// on a dual-stack socket (two messages, the second one wins).
func BenchmarkParsePktinfo(b *testing.B) {
	oob := dualStackOOB()
	b.ReportAllocs()
	var a netip.Addr
	for b.Loop() {
		a = ParsePktinfo(oob)
	}
	if a != netip.MustParseAddr("127.0.0.1") {
		b.Fatal(a)
	}
}
