package mmsg

import (
	"bytes"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// TestPktinfoLayout checks the ABI offsets ParsePktinfo and PutPktinfo use
// without unsafe against x/sys's structs.
func TestPktinfoLayout(t *testing.T) {
	if o := unsafe.Offsetof(unix.Inet4Pktinfo{}.Spec_dst); o != pktinfo4SpecDst {
		t.Errorf("in_pktinfo.ipi_spec_dst at %d, pktinfo4SpecDst = %d", o, pktinfo4SpecDst)
	}
	if o := unsafe.Offsetof(unix.Inet6Pktinfo{}.Addr); o != pktinfo6Addr {
		t.Errorf("in6_pktinfo.ipi6_addr at %d, pktinfo6Addr = %d", o, pktinfo6Addr)
	}
}

// TestPutPktinfoMatchesXSys compares PutPktinfo's bytes with what
// unix.PktInfo4/PktInfo6 (which write through unsafe into a new slice)
// build for the same source.
func TestPutPktinfoMatchesXSys(t *testing.T) {
	for _, tc := range []struct {
		family int
		src    string
		want   []byte
	}{
		{unix.AF_INET, "127.0.0.2", unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: [4]byte{127, 0, 0, 2}})},
		{unix.AF_INET6, "2001:db8::5", unix.PktInfo6(&unix.Inet6Pktinfo{Addr: netip.MustParseAddr("2001:db8::5").As16()})},
		{unix.AF_INET6, "127.0.0.3", unix.PktInfo6(&unix.Inet6Pktinfo{Addr: netip.MustParseAddr("::ffff:127.0.0.3").As16()})},
	} {
		oob := bytes.Repeat([]byte{0xee}, SendPktinfoSpace) // not zeroed: PutPktinfo must clear what it uses
		n := PutPktinfo(oob, tc.family, netip.MustParseAddr(tc.src))
		if n != len(tc.want) {
			t.Fatalf("PutPktinfo(%s) = %d bytes, x/sys builds %d", tc.src, n, len(tc.want))
		}
		// Compare up to cmsg_len: the padding after it is never read.
		l := int(binary64(tc.want))
		if !bytes.Equal(oob[:l], tc.want[:l]) {
			t.Errorf("PutPktinfo(%s)\n got % x\nwant % x", tc.src, oob[:l], tc.want[:l])
		}
	}
}

// binary64 reads cmsg_len of the message at b.
func binary64(b []byte) uint64 {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	return uint64(h.Len)
}

func TestPutPktinfoAllocatesNothing(t *testing.T) {
	oob := make([]byte, SendPktinfoSpace)
	src := netip.MustParseAddr("2001:db8::5")
	if a := testing.AllocsPerRun(100, func() { PutPktinfo(oob, unix.AF_INET6, src) }); a != 0 {
		t.Fatalf("PutPktinfo: %v allocations per call", a)
	}
}

// loopbackPair is an unconnected receiver on 127.0.0.1 and a sender socket
// connected to it, both with a 1 s read deadline.
func loopbackPair(t testing.TB) (rx, tx *net.UDPConn) {
	t.Helper()
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	tx, err = net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	_ = rx.SetReadBuffer(4 << 20)
	return rx, tx
}

// rawCall runs f on c's descriptor.
func rawCall(t testing.TB, c *net.UDPConn, f func(fd uintptr)) {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Control(f); err != nil {
		t.Fatal(err)
	}
}

// TestBatchSendRecv sends three datagrams of different lengths with one
// sendmmsg to an unconnected socket and reads them back with one recvmmsg:
// lengths, data and the sender's address come back, and a datagram longer
// than its slot shows its real length under MSG_TRUNC.
func TestBatchSendRecv(t *testing.T) {
	rx, tx := loopbackPair(t)
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	msgs := [][]byte{[]byte("a"), []byte("bcdef"), bytes.Repeat([]byte("x"), 40)}
	out := NewBatch(len(msgs), Options{Addrs: true})
	for i, m := range msgs {
		out.SetBuf(i, m)
		if !out.SetAddr(i, unix.AF_INET, to) {
			t.Fatalf("SetAddr(%v) refused", to)
		}
	}
	var sent int
	var errno unix.Errno
	rawCall(t, tx, func(fd uintptr) { sent, errno = out.Send(fd, 0, len(msgs), 0) })
	if sent != len(msgs) || errno != 0 {
		t.Fatalf("Send = %d, %v", sent, errno)
	}
	in := NewBatch(4, Options{Addrs: true})
	slab := make([]byte, 4*32)
	for i := range 4 {
		in.SetBuf(i, slab[i*32:(i+1)*32])
	}
	var got int
	deadline := time.Now().Add(30 * time.Second)
	for got == 0 && time.Now().Before(deadline) {
		rawCall(t, rx, func(fd uintptr) { got, errno = in.Recv(fd, 4, unix.MSG_DONTWAIT|unix.MSG_TRUNC) })
		if errno == unix.EAGAIN {
			time.Sleep(time.Millisecond)
			continue
		}
		if errno != 0 {
			t.Fatal(errno)
		}
	}
	from := tx.LocalAddr().(*net.UDPAddr).AddrPort()
	if got != len(msgs) {
		t.Fatalf("Recv = %d datagrams, want %d", got, len(msgs))
	}
	for i, m := range msgs {
		if in.MsgLen(i) != len(m) {
			t.Errorf("datagram %d: MsgLen %d, want %d", i, in.MsgLen(i), len(m))
		}
		if n := min(len(m), 32); !bytes.Equal(slab[i*32:i*32+n], m[:n]) {
			t.Errorf("datagram %d: data %q", i, slab[i*32:i*32+n])
		}
		if in.Addr(i) != from {
			t.Errorf("datagram %d: from %v, want %v", i, in.Addr(i), from)
		}
	}
}

// TestConnRoundTrip sends a batch on a connected socket and reads it back
// through Conn, which waits in the netpoller.
func TestConnRoundTrip(t *testing.T) {
	rx, tx := loopbackPair(t)
	ct, err := NewConn(tx, 8, 64)
	if err != nil {
		t.Fatal(err)
	}
	msgs := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
	if n, err := ct.WriteBatch(msgs); n != len(msgs) || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	// Echo them back to tx, so that tx's Conn reads them.
	buf := make([]byte, 64)
	_ = rx.SetReadDeadline(time.Now().Add(30 * time.Second))
	for range msgs {
		n, from, err := rx.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rx.WriteToUDPAddrPort(buf[:n], from); err != nil {
			t.Fatal(err)
		}
	}
	_ = tx.SetReadDeadline(time.Now().Add(30 * time.Second))
	out := make([][]byte, 8)
	var got []string
	for len(got) < len(msgs) {
		n, err := ct.ReadBatch(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out[:n] {
			got = append(got, string(m))
		}
	}
	if want := []string{"one", "two", "three"}; !equal(got, want) {
		t.Fatalf("read back %q, want %q", got, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkRecv64 measures the allocations this package exists to avoid:
// 64 datagrams are queued on a loopback socket with one sendmmsg, then read
// with batch calls, by Batch.Recv (with the senders' addresses decoded) and
// by x/net's ipv4.PacketConn.ReadBatch. Each reports allocs/datagram and
// B/datagram over the whole loop; the sending side allocates nothing.
func BenchmarkRecv64(b *testing.B) {
	const n = 64
	run := func(b *testing.B, read func(rx *net.UDPConn) int) {
		rx, tx := loopbackPair(b)
		send := NewBatch(n, Options{})
		payload := make([]byte, 64)
		for i := range n {
			send.SetBuf(i, payload)
		}
		var sent int
		var errno unix.Errno
		sendFn := func(fd uintptr) { sent, errno = send.Send(fd, 0, n, 0) }
		trc, err := tx.SyscallConn()
		if err != nil {
			b.Fatal(err)
		}
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		for b.Loop() {
			if err := trc.Control(sendFn); err != nil || sent != n || errno != 0 {
				b.Fatalf("send = %d, %v %v", sent, errno, err)
			}
			for got := 0; got < n; {
				got += read(rx)
			}
		}
		runtime.ReadMemStats(&ms1)
		dgrams := float64(b.N) * n
		b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/dgrams, "allocs/datagram")
		b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/dgrams, "B/datagram")
	}
	b.Run("mmsg.Batch", func(b *testing.B) {
		in := NewBatch(n, Options{Addrs: true})
		slab := make([]byte, n*2048)
		for i := range n {
			in.SetBuf(i, slab[i*2048:(i+1)*2048])
		}
		var got int
		var errno unix.Errno
		var from netip.AddrPort
		recvFn := func(fd uintptr) { got, errno = in.Recv(fd, n, unix.MSG_DONTWAIT) }
		var rc syscall.RawConn
		run(b, func(rx *net.UDPConn) int {
			if rc == nil {
				rc, _ = rx.SyscallConn()
			}
			if err := rc.Control(recvFn); err != nil || (errno != 0 && errno != unix.EAGAIN) {
				b.Fatal(err, errno)
			}
			for i := range got {
				from = in.Addr(i)
			}
			return got
		})
		if !from.IsValid() {
			b.Fatal("no sender address decoded")
		}
	})
	b.Run("x/net.ReadBatch", func(b *testing.B) {
		msgs := make([]ipv4.Message, n)
		for i := range msgs {
			msgs[i].Buffers = [][]byte{make([]byte, 2048)}
		}
		var pc *ipv4.PacketConn
		run(b, func(rx *net.UDPConn) int {
			if pc == nil {
				pc = ipv4.NewPacketConn(rx)
			}
			k, err := pc.ReadBatch(msgs, 0)
			if err != nil {
				b.Fatal(err)
			}
			return k
		})
	})
}
