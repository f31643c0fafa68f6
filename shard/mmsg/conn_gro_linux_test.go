package mmsg

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// segmentOOB is a UDP_SEGMENT control message for size-byte segments.
func segmentOOB(size int) []byte {
	oob := make([]byte, SegmentSpace)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(size))
	return oob
}

// TestConnGROSplitsCoalescedBuffers sends GSO trains (equal datagrams, one
// with a shorter last) and plain datagrams of other sizes to a Conn with
// GRO, reads them back through an out smaller than a train, and expects
// every datagram, byte-exact and in order, and fewer buffers than
// datagrams (the trains crossed loopback whole).
func TestConnGROSplitsCoalescedBuffers(t *testing.T) {
	rx, tx := loopbackPair(t)
	// rx is the Conn's side: connected back to tx so that Conn reads it.
	if err := connect(rx, tx.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	c, err := NewConn(rx, 8, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if !c.EnableGRO(4) {
		t.Skip("no UDP_GRO on this kernel")
	}
	var want [][]byte
	train := func(n, size, last int) []byte {
		var buf []byte
		for i := range n {
			l := size
			if i == n-1 && last > 0 {
				l = last
			}
			d := bytes.Repeat([]byte{byte(len(want))}, l)
			want = append(want, d)
			buf = append(buf, d...)
		}
		return buf
	}
	for _, tr := range []struct{ n, size, last int }{{64, 100, 0}, {11, 300, 37}, {20, 1200, 0}} {
		if _, _, err := tx.WriteMsgUDP(train(tr.n, tr.size, tr.last), segmentOOB(tr.size), nil); err != nil {
			t.Fatalf("GSO send: %v", err)
		}
	}
	for _, size := range []int{5, 300, 0, 70} {
		d := train(1, size, 0)
		if _, err := tx.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	_ = rx.SetReadDeadline(time.Now().Add(30 * time.Second))
	out := make([][]byte, 7)
	var got [][]byte
	for len(got) < len(want) {
		n, err := c.ReadBatch(out)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(got), err)
		}
		for _, d := range out[:n] {
			got = append(got, bytes.Clone(d))
		}
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("datagram %d: %d bytes of %d, want %d bytes of %d", i, len(got[i]), got[i][:min(1, len(got[i]))], len(want[i]), want[i][:min(1, len(want[i]))])
		}
	}
	if c.gro.bufs >= len(want) {
		t.Fatalf("%d datagrams came in %d buffers: nothing was coalesced", len(want), c.gro.bufs)
	}
	t.Logf("%d datagrams in %d buffers", len(want), c.gro.bufs)
}

// connect connects c's socket to to (a *net.UDPConn from ListenUDP stays
// unconnected otherwise).
func connect(c *net.UDPConn, to *net.UDPAddr) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	err = rc.Control(func(fd uintptr) {
		cerr = unix.Connect(int(fd), &unix.SockaddrInet4{Port: to.Port, Addr: [4]byte(to.IP.To4())})
	})
	if err != nil {
		return err
	}
	return cerr
}
