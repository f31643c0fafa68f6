package shard

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/shard/internal/xdp"
	"github.com/shardd/shardd/shard/netnstest"
)

// rawPort is an AF_PACKET socket on one end of a pair: it sends whole
// Ethernet frames as given (an 802.1Q tag included) and reads every frame
// of the device with the tag the kernel took out of the data on receive
// (PACKET_AUXDATA), as libpcap does.
type rawPort struct {
	fd      int
	ifindex int
	mac     [6]byte
}

// openRaw opens a rawPort on dev in n, closed at the test's end.
func openRaw(t *testing.T, n *netnstest.NS, dev string) *rawPort {
	t.Helper()
	r := &rawPort{fd: -1}
	n.Run(t, func() {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			t.Error(err)
			return
		}
		r.ifindex = ifi.Index
		copy(r.mac[:], ifi.HardwareAddr)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			t.Errorf("AF_PACKET socket: %v", err)
			return
		}
		r.fd = fd
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		if err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err == nil {
			err = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1)
		}
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
		}
		if err != nil {
			t.Errorf("AF_PACKET socket on %s: %v", dev, err)
		}
	})
	if r.fd >= 0 {
		t.Cleanup(func() { _ = unix.Close(r.fd) })
	}
	if t.Failed() {
		t.FailNow()
	}
	return r
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (r *rawPort) send(t *testing.T, frame []byte) {
	t.Helper()
	if err := unix.Sendto(r.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: r.ifindex, Halen: 6}); err != nil {
		t.Fatalf("AF_PACKET send: %v", err)
	}
}

// rawFrame is a received frame: its data (without the tag the kernel
// took out) and the tag.
type rawFrame struct {
	data      []byte
	tpid, tci uint16
	tagged    bool
}

// next waits up to 30 s for a frame the device received (not one it
// sent) that match accepts.
func (r *rawPort) next(t *testing.T, what string, match func(*rawFrame) bool) *rawFrame {
	t.Helper()
	buf, oob := make([]byte, 4096), make([]byte, 256)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		n, oobn, _, from, err := unix.Recvmsg(r.fd, buf, oob, 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("AF_PACKET receive: %v", err)
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		f := &rawFrame{data: bytes.Clone(buf[:n])}
		if err := f.auxdata(oob[:oobn]); err != nil {
			t.Fatal(err)
		}
		if match(f) {
			return f
		}
	}
	t.Fatalf("waited 30 s for %s", what)
	return nil
}

// auxdata reads the VLAN tag from the PACKET_AUXDATA control message
// (struct tpacket_auxdata).
func (f *rawFrame) auxdata(oob []byte) error {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA || len(m.Data) < 20 {
			continue
		}
		status := binary.NativeEndian.Uint32(m.Data[0:4])
		f.tci = binary.NativeEndian.Uint16(m.Data[16:18])
		f.tpid = binary.NativeEndian.Uint16(m.Data[18:20])
		f.tagged = status&unix.TP_STATUS_VLAN_VALID != 0
		if status&unix.TP_STATUS_VLAN_TPID_VALID == 0 && f.tagged {
			f.tpid = 0x8100 // the kernel sets TPID_VALID with every tag it reports since 3.14
		}
		return nil
	}
	return fmt.Errorf("no PACKET_AUXDATA among %d control messages", len(msgs))
}

// taggedRequest builds, with the codec, a frame from A to B with one
// 802.1Q tag tci carrying a UDP datagram from src to dst.
func taggedRequest(t *testing.T, a, b *rawPort, tci uint16, src, dst netip.AddrPort, payload []byte) []byte {
	t.Helper()
	frame := make([]byte, xdp.MaxHeaders+len(payload))
	// Build answers req: it writes a frame from req.DstMAC to req.SrcMAC.
	req := xdp.Header{SrcMAC: b.mac, DstMAC: a.mac, VLAN: tci, Tagged: true}
	frame = frame[:xdp.Build(frame, &req, src, dst, payload)]
	if len(frame) < 18 || !bytes.Equal(frame[:12], append(b.mac[:], a.mac[:]...)) ||
		binary.BigEndian.Uint16(frame[12:14]) != unix.ETH_P_8021Q || binary.BigEndian.Uint16(frame[14:16]) != tci {
		t.Fatalf("request frame % x: want B's MAC, A's, then the tag 8100 %04x", frame, tci)
	}
	return frame
}

// checksum is the Internet checksum (RFC 1071) of the byte strings in
// turn, computed here independently of the codec.
func checksum(parts ...[]byte) uint16 {
	var s uint32
	for _, p := range parts {
		for i := 0; i < len(p); i += 2 {
			w := uint32(p[i]) << 8
			if i+1 < len(p) {
				w |= uint32(p[i+1])
			}
			s += w
		}
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// checkUDPReply checks an untagged frame's data (the tag checked apart)
// against the echo of a request from src (A, MAC a) to dst (B, MAC b):
// MACs, addresses and ports swapped, IPv4 header and UDP checksums valid
// (the UDP one present over IPv6), payload byte for byte.
func checkUDPReply(t *testing.T, d []byte, a, b *rawPort, src, dst netip.AddrPort, payload []byte) {
	t.Helper()
	if !bytes.Equal(d[0:6], a.mac[:]) || !bytes.Equal(d[6:12], b.mac[:]) {
		t.Fatalf("reply from MAC % x to % x, want from B's % x to A's % x", d[6:12], d[0:6], b.mac, a.mac)
	}
	ip := d[14:]
	var pseudo, udp []byte
	if src.Addr().Is4() {
		if binary.BigEndian.Uint16(d[12:14]) != unix.ETH_P_IP || len(ip) < 28 || ip[0] != 0x45 || ip[9] != unix.IPPROTO_UDP {
			t.Fatalf("reply is not IPv4/UDP: % x", d)
		}
		if c := checksum(ip[:20]); c != 0 {
			t.Fatalf("IPv4 header checksum wrong (sums to %#04x): % x", c, ip[:20])
		}
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if total < 28 || total > len(ip) {
			t.Fatalf("IPv4 total length %d over the frame's %d", total, len(ip))
		}
		udp = ip[20:total]
		pseudo = binary.BigEndian.AppendUint16(append(bytes.Clone(ip[12:20]), 0, unix.IPPROTO_UDP), uint16(len(udp)))
	} else {
		if binary.BigEndian.Uint16(d[12:14]) != unix.ETH_P_IPV6 || len(ip) < 48 || ip[0]>>4 != 6 || ip[6] != unix.IPPROTO_UDP {
			t.Fatalf("reply is not IPv6/UDP: % x", d)
		}
		plen := int(binary.BigEndian.Uint16(ip[4:6]))
		if plen < 8 || 40+plen > len(ip) {
			t.Fatalf("IPv6 payload length %d over the frame's %d", plen, len(ip)-40)
		}
		udp = ip[40 : 40+plen]
		pseudo = append(binary.BigEndian.AppendUint32(bytes.Clone(ip[8:40]), uint32(len(udp))), 0, 0, 0, unix.IPPROTO_UDP)
		if udp[6]|udp[7] == 0 {
			t.Fatal("IPv6 UDP reply without a checksum")
		}
	}
	if c := checksum(pseudo, udp); c != 0 {
		t.Fatalf("UDP checksum wrong (sums to %#04x): % x", c, udp)
	}
	from, to := addrPorts(ip, udp, src.Addr().Is4())
	if from != dst || to != src || int(binary.BigEndian.Uint16(udp[4:6])) != len(udp) || !bytes.Equal(udp[8:], payload) {
		t.Fatalf("reply %v -> %v %q, want %v -> %v %q", from, to, udp[8:], dst, src, payload)
	}
}

// addrPorts are a datagram's source and destination.
func addrPorts(ip, udp []byte, v4 bool) (src, dst netip.AddrPort) {
	var s, d netip.Addr
	if v4 {
		s, d = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
	} else {
		s, d = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
	}
	return netip.AddrPortFrom(s, binary.BigEndian.Uint16(udp[0:2])), netip.AddrPortFrom(d, binary.BigEndian.Uint16(udp[2:4]))
}

// isUDPTo reports whether f carries a UDP datagram to port (over IPv4 or
// IPv6, the tag taken out).
func isUDPTo(f *rawFrame, v4 bool, port uint16) bool {
	d := f.data
	if len(d) < 14 {
		return false
	}
	typ, ip := binary.BigEndian.Uint16(d[12:14]), d[14:]
	if v4 {
		return typ == unix.ETH_P_IP && len(ip) >= 28 && ip[9] == unix.IPPROTO_UDP && binary.BigEndian.Uint16(ip[22:24]) == port
	}
	return typ == unix.ETH_P_IPV6 && len(ip) >= 48 && ip[6] == unix.IPPROTO_UDP && binary.BigEndian.Uint16(ip[42:44]) == port
}

// TestXDPVLANEcho: Ethernet frames with one 802.1Q tag (VLAN 100 with a
// priority, and a priority tag, VLAN 0), IPv4 and IPv6, sent from A's end
// of the pair by an AF_PACKET socket to a real group with --xdp on B's end,
// go through the AF_XDP socket (the xdp counters count each, the UDP socket
// none) and are echoed in a frame with the same tag (TPID 0x8100, same VID,
// PCP and DEI), MACs, addresses and ports swapped, checksums valid and the
// payload byte for byte, as A's AF_PACKET socket captures them.
func TestXDPVLANEcho(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	g := listenXDP(t, p, Config{Addr: ":0", Shards: 1})
	go func() { _ = g.Serve(context.Background()) }()
	a, b := openRaw(t, p.A, p.DevA), openRaw(t, p.B, p.DevB)
	port := groupPort(g)
	sent := 0
	for _, tci := range []uint16{3<<13 | 1<<12 | 100, 5 << 13} {
		for k, dst := range []netip.Addr{p.B4, p.B6} {
			src := netip.AddrPortFrom(p.A4, 40000+uint16(sent))
			if k == 1 {
				src = netip.AddrPortFrom(p.A6, 40000+uint16(sent))
			}
			to := netip.AddrPortFrom(dst, port)
			payload := fmt.Appendf(nil, "tci %#04x to %v, %s", tci, to, bytes.Repeat([]byte{byte(sent)}, 33+sent))
			a.send(t, taggedRequest(t, a, b, tci, src, to, payload))
			sent++
			f := a.next(t, fmt.Sprintf("echo of the frame tagged %#04x to %v", tci, to), func(f *rawFrame) bool {
				return isUDPTo(f, dst.Is4(), src.Port())
			})
			if !f.tagged || f.tpid != unix.ETH_P_8021Q || f.tci != tci {
				t.Fatalf("reply to %v tagged %v, TPID %#04x, TCI %#04x; want TPID 0x8100, TCI %#04x", to, f.tagged, f.tpid, f.tci, tci)
			}
			checkUDPReply(t, f.data, a, b, src, to, payload)
		}
	}
	rx, tx := protoTotals(g.Stats(nil))
	if rx["xdp"] != uint64(sent) || tx["xdp"] != uint64(sent) || rx["udp"] != 0 || tx["udp"] != 0 {
		t.Fatalf("sent %d tagged datagrams: received %v, sent %v by proto; want all by AF_XDP", sent, rx, tx)
	}
}

// TestXDPVLANOtherPortPasses: a tagged frame to another UDP port passes to
// B's kernel, not the AF_XDP socket. A sends, with one 802.1Q tag each, a
// datagram to the listener (echoed by AF_XDP, as the check that the path
// works), then one in VLAN 100 and one priority-tagged (VLAN 0) to
// another port: B's AF_PACKET tap, which sees only what the program
// passed, sees the two (and not the first, which bypassed B's stack), the
// kernel delivers the priority-tagged one to the UDP socket on that port
// (it has no VLAN 100 device for the other), and the xdp counters count
// the first only.
func TestXDPVLANOtherPortPasses(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	g := listenXDP(t, p, Config{Addr: ":0", Shards: 1})
	go func() { _ = g.Serve(context.Background()) }()
	a, b := openRaw(t, p.A, p.DevA), openRaw(t, p.B, p.DevB)
	other, err := p.B.ListenUDP("udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	port, otherPort := groupPort(g), uint16(other.LocalAddr().(*net.UDPAddr).Port)
	src4, src6 := netip.AddrPortFrom(p.A4, 40001), netip.AddrPortFrom(p.A6, 40002)
	to := netip.AddrPortFrom(p.B4, port)
	a.send(t, taggedRequest(t, a, b, 100, src4, to, []byte("to the listener")))
	a.next(t, "echo of the tagged frame to the listener", func(f *rawFrame) bool { return isUDPTo(f, true, src4.Port()) })
	passed := []struct {
		tci     uint16
		src, to netip.AddrPort
		payload string
	}{
		{100, src4, netip.AddrPortFrom(p.B4, otherPort), "VLAN 100 to another port"},
		{5 << 13, src6, netip.AddrPortFrom(p.B6, otherPort), "priority-tagged to another port"},
	}
	for _, c := range passed {
		a.send(t, taggedRequest(t, a, b, c.tci, c.src, c.to, []byte(c.payload)))
	}
	for _, c := range passed {
		f := b.next(t, "the frame "+c.payload+" in B's kernel", func(f *rawFrame) bool {
			return isUDPTo(f, true, port) || isUDPTo(f, true, otherPort) || isUDPTo(f, false, otherPort)
		})
		if !f.tagged || f.tci != c.tci || !bytes.HasSuffix(f.data, []byte(c.payload)) {
			t.Fatalf("B's kernel saw %q (tagged %v, TCI %#04x) first; want %q tagged %#04x (the frame to the listener bypasses it)", f.data, f.tagged, f.tci, c.payload, c.tci)
		}
	}
	_ = other.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 64)
	n, from, err := other.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != passed[1].payload || from != src6 {
		t.Fatalf("the UDP socket on the other port got %q from %v, %v; want %q from %v", buf[:max(n, 0)], from, err, passed[1].payload, src6)
	}
	rx, _ := protoTotals(g.Stats(nil))
	if rx["xdp"] != 1 || rx["udp"] != 0 {
		t.Fatalf("received %v by proto; want the one datagram to the listener by AF_XDP", rx)
	}
}

// TestXDPVLANReplyOfMTUSize: a tagged request whose echo fills the MTU
// exactly (a 1500-byte IP packet; the tag is not part of the MTU) is
// answered by AF_XDP in its VLAN, IPv4 and IPv6, not handed to the UDP
// socket as if it were 4 bytes over the MTU.
func TestXDPVLANReplyOfMTUSize(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	g := listenXDP(t, p, Config{Addr: ":0", Shards: 1})
	go func() { _ = g.Serve(context.Background()) }()
	a, b := openRaw(t, p.A, p.DevA), openRaw(t, p.B, p.DevB)
	port := groupPort(g)
	for i, c := range []struct {
		src, dst netip.Addr
		size     int
	}{{p.A4, p.B4, 1500 - 20 - 8}, {p.A6, p.B6, 1500 - 40 - 8}} {
		src, to := netip.AddrPortFrom(c.src, 41000+uint16(i)), netip.AddrPortFrom(c.dst, port)
		payload := bytes.Repeat([]byte{'m', byte(i)}, c.size/2)
		a.send(t, taggedRequest(t, a, b, 100, src, to, payload))
		f := a.next(t, fmt.Sprintf("echo of the %d-byte datagram to %v", c.size, to), func(f *rawFrame) bool {
			return isUDPTo(f, c.dst.Is4(), src.Port())
		})
		if !f.tagged || f.tci != 100 {
			t.Fatalf("the MTU-sized reply to %v tagged %v, TCI %#04x; want VLAN 100", to, f.tagged, f.tci)
		}
		checkUDPReply(t, f.data, a, b, src, to, payload)
	}
	rx, tx := protoTotals(g.Stats(nil))
	if rx["xdp"] != 2 || tx["xdp"] != 2 || rx["udp"] != 0 {
		t.Fatalf("received %v, sent %v by proto; want both by AF_XDP", rx, tx)
	}
}
