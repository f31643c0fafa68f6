package shard

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
		if _, ok := encodeSockaddr(&rsa, tc.family, netip.MustParseAddrPort(tc.in)); !ok {
			t.Fatalf("encode %s in family %d refused", tc.in, tc.family)
		}
		if got := decodeSockaddr(&rsa); got.String() != tc.want {
			t.Errorf("%s -> %v, want %s", tc.in, got, tc.want)
		}
	}
	var rsa unix.RawSockaddrInet6
	for _, bad := range []netip.AddrPort{{}, netip.MustParseAddrPort("[::1]:53"), netip.MustParseAddrPort("127.0.0.1:0")} {
		if _, ok := encodeSockaddr(&rsa, unix.AF_INET, bad); ok {
			t.Errorf("%v accepted for an IPv4 socket", bad)
		}
	}
}

func TestPktinfoRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		family int
		src    string
	}{{unix.AF_INET, "127.0.0.2"}, {unix.AF_INET6, "2001:db8::5"}, {unix.AF_INET6, "127.0.0.3"}} {
		m := &mmsgConn{family: tc.family}
		oob := make([]byte, oobSpace)
		n := m.putPktinfo(oob, netip.MustParseAddr(tc.src))
		if n == 0 {
			t.Fatalf("putPktinfo(%s) wrote nothing", tc.src)
		}
		if got := parsePktinfo(oob[:n]); got.String() != tc.src {
			t.Errorf("pktinfo %s came back as %v", tc.src, got)
		}
	}
	m := &mmsgConn{family: unix.AF_INET6}
	for _, skip := range []netip.Addr{{}, netip.IPv6Unspecified(), netip.MustParseAddr("ff02::1")} {
		if n := m.putPktinfo(make([]byte, oobSpace), skip); n != 0 {
			t.Errorf("putPktinfo(%v) = %d, want 0 (leave the source to the kernel)", skip, n)
		}
	}
}

// FuzzParsePktinfo feeds arbitrary control-message bytes, as a buggy or
// hostile kernel path could, and expects no panic and no out-of-range read.
func FuzzParsePktinfo(f *testing.F) {
	m := &mmsgConn{family: unix.AF_INET}
	seed := make([]byte, oobSpace)
	f.Add(seed[:m.putPktinfo(seed, netip.MustParseAddr("10.0.0.1"))])
	m.family = unix.AF_INET6
	seed6 := make([]byte, oobSpace)
	f.Add(seed6[:m.putPktinfo(seed6, netip.MustParseAddr("2001:db8::1"))])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, oob []byte) {
		// Control buffers are 8-byte aligned in the shard; keep the fuzzer's too.
		buf := make([]uint64, (len(oob)+7)/8)
		b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), len(buf)*8)[:len(oob)]
		copy(b, oob)
		_ = parsePktinfo(b)
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
