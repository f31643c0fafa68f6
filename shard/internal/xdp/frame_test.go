package xdp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// checksumOK verifies a built frame's IPv4 header checksum and UDP
// checksum by summing them in, as a receiver does (the sum folds to zero).
func checksumOK(t *testing.T, frame []byte, h *Header) {
	t.Helper()
	l3 := frame[ethLen:]
	if h.Tagged {
		l3 = l3[vlanLen:]
	}
	var pseudo uint64
	var udp []byte
	if h.Src.Addr().Is4() {
		if c := fold(sum16(l3[:ipv4Len])); c != 0 {
			t.Fatalf("IPv4 header checksum off by %#x", c)
		}
		pseudo, udp = sum16(l3[12:20]), l3[ipv4Len:]
	} else {
		pseudo, udp = sum16(l3[8:40]), l3[ipv6Len:]
	}
	udp = udp[:binary.BigEndian.Uint16(udp[4:6])]
	if c := fold(pseudo + protoUDP + uint64(len(udp)) + sum16(udp)); c != 0 {
		t.Fatalf("UDP checksum off by %#x", c)
	}
}

func TestBuildParseRoundTrip(t *testing.T) {
	req := Header{DstMAC: [6]byte{2, 0, 0, 0, 0, 1}, SrcMAC: [6]byte{2, 0, 0, 0, 0, 2}}
	for _, c := range []struct {
		src, dst string
		tagged   bool
		payload  string
	}{
		{"198.18.0.2:53", "198.18.0.1:40000", false, "odd-length payload"},
		{"[2001:2::2]:53", "[2001:2::1]:40000", false, "even payload"},
		{"198.18.0.2:53", "198.18.0.1:1", true, ""},
		{"[2001:2::2]:7", "[2001:2::1]:65535", true, "x"},
	} {
		req.Tagged, req.VLAN = c.tagged, 0x0123
		src, dst := netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst)
		frame := make([]byte, 2048)
		n := Build(frame, &req, src, dst, []byte(c.payload))
		if n != HeadersLen(&req, src.Addr())+len(c.payload) {
			t.Fatalf("%v: built %d bytes", c, n)
		}
		if ip := frame[LinkLen(&req):n]; ipLen(ip) != len(ip) {
			t.Fatalf("%v: the IP packet after LinkLen %d says it is %d bytes, the frame holds %d", c, LinkLen(&req), ipLen(ip), len(ip))
		}
		var h Header
		got, ok := Parse(frame[:n], &h)
		if !ok || string(got) != c.payload || h.Src != src || h.Dst != dst || h.Tagged != c.tagged ||
			(c.tagged && h.VLAN != 0x0123) || h.SrcMAC != req.DstMAC || h.DstMAC != req.SrcMAC {
			t.Fatalf("%v: parsed %+v %q %v", c, h, got, ok)
		}
		checksumOK(t, frame[:n], &h)
		if Build(frame[:n-1], &req, src, dst, []byte(c.payload)) != 0 {
			t.Fatalf("%v: built into a frame one byte short", c)
		}
	}
}

func TestParseRefusesWhatTheProgramPasses(t *testing.T) {
	req := Header{}
	frame := make([]byte, 256)
	n := Build(frame, &req, netip.MustParseAddrPort("198.18.0.2:53"), netip.MustParseAddrPort("198.18.0.1:5"), []byte("abc"))
	for name, mutate := range map[string]func(f []byte){
		"options":   func(f []byte) { f[ethLen] = 0x46 },
		"fragment":  func(f []byte) { f[ethLen+6] |= 0x20 },
		"tcp":       func(f []byte) { f[ethLen+9] = 6 },
		"arp":       func(f []byte) { f[12], f[13] = 0x08, 0x06 },
		"short udp": func(f []byte) { binary.BigEndian.PutUint16(f[ethLen+ipv4Len+4:], 7) },
		"long udp":  func(f []byte) { binary.BigEndian.PutUint16(f[ethLen+ipv4Len+4:], 100) },
		"long ip":   func(f []byte) { binary.BigEndian.PutUint16(f[ethLen+2:], 100) },
		"short ip":  func(f []byte) { binary.BigEndian.PutUint16(f[ethLen+2:], ipv4Len+udpLen-1) },
		"ip sum":    func(f []byte) { f[ethLen+8]-- }, // the TTL, as a router would, without fixing the sum
	} {
		f := bytes.Clone(frame[:n])
		mutate(f)
		var h Header
		if _, ok := Parse(f, &h); ok {
			t.Errorf("%s: parsed", name)
		}
	}
}

// TestParseRefusesIPv6WithoutChecksum: over IPv6 the UDP checksum is
// mandatory; a datagram with none is dropped as the kernel drops it, and
// the same frame with its checksum is served.
func TestParseRefusesIPv6WithoutChecksum(t *testing.T) {
	frame := make([]byte, 256)
	for _, tagged := range []bool{false, true} {
		req := Header{Tagged: tagged, VLAN: 5}
		n := Build(frame, &req, netip.MustParseAddrPort("[2001:2::2]:53"), netip.MustParseAddrPort("[2001:2::1]:5"), []byte("abc"))
		var h Header
		if _, ok := Parse(frame[:n], &h); !ok {
			t.Fatalf("tagged %v: the frame with its checksum was not parsed", tagged)
		}
		sum := n - 3 - 2
		frame[sum], frame[sum+1] = 0, 0
		if _, ok := Parse(frame[:n], &h); ok {
			t.Fatalf("tagged %v: parsed an IPv6 UDP datagram with a zero checksum", tagged)
		}
	}
}

// TestParseRefusesMartianSources: a datagram from an address that cannot
// send one (unspecified, loopback, multicast, broadcast) is dropped, as
// the kernel drops it, rather than answered.
func TestParseRefusesMartianSources(t *testing.T) {
	frame := make([]byte, 256)
	for _, c := range []struct{ src, dst string }{
		{"0.0.0.0:68", "198.18.0.2:53"}, {"127.0.0.1:5", "198.18.0.2:53"}, {"224.0.0.1:5", "198.18.0.2:53"},
		{"255.255.255.255:5", "198.18.0.2:53"}, {"[::]:5", "[2001:2::2]:53"}, {"[::1]:5", "[2001:2::2]:53"},
		{"[ff02::1]:5", "[2001:2::2]:53"},
	} {
		n := Build(frame, &Header{}, netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst), []byte("abc"))
		var h Header
		if _, ok := Parse(frame[:n], &h); ok {
			t.Errorf("a datagram from %s parsed", c.src)
		}
	}
}

// FuzzParse: Parse never panics, and whatever it accepts, Build answers
// with a frame Parse reads back with the addresses swapped.
func FuzzParse(f *testing.F) {
	frame := make([]byte, 256)
	req := Header{Tagged: true, VLAN: 7}
	n := Build(frame, &req, netip.MustParseAddrPort("[2001:2::2]:53"), netip.MustParseAddrPort("[2001:2::1]:5"), []byte("abc"))
	f.Add(frame[:n])
	n = Build(frame, &Header{}, netip.MustParseAddrPort("198.18.0.2:53"), netip.MustParseAddrPort("198.18.0.1:5"), []byte("abcd"))
	f.Add(frame[:n])
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		payload, ok := Parse(b, &h)
		if !ok {
			return
		}
		if h.Src.Addr().Is4() != h.Dst.Addr().Is4() {
			t.Fatalf("mixed families %v %v", h.Src, h.Dst)
		}
		out := make([]byte, MaxHeaders+len(payload))
		m := Build(out, &h, h.Dst, h.Src, payload)
		if m == 0 || !unicastSource(h.Dst.Addr()) {
			return // a payload too long for an IPv4 reply, or a reply Parse would refuse
		}
		var r Header
		got, ok := Parse(out[:m], &r)
		if !ok || !bytes.Equal(got, payload) || r.Src != h.Dst || r.Dst != h.Src {
			t.Fatalf("reply parsed %v %+v", ok, r)
		}
		checksumOK(t, out[:m], &r)
	})
}

// ipLen is the length an IP packet's header gives it (0 for a packet that
// does not start with an IPv4 or IPv6 header).
func ipLen(ip []byte) int {
	switch {
	case len(ip) >= ipv4Len && ip[0]>>4 == 4:
		return int(binary.BigEndian.Uint16(ip[2:4]))
	case len(ip) >= ipv6Len && ip[0]>>4 == 6:
		return ipv6Len + int(binary.BigEndian.Uint16(ip[4:6]))
	}
	return 0
}
