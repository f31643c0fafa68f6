package xdp

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/shard/netnstest"
)

// server is the program and one socket on queue 0 of the pair's B end,
// redirecting UDP to port.
type server struct {
	prog *Program
	sock *Socket
}

func newServer(t *testing.T, p *netnstest.Pair, port uint16) *server {
	t.Helper()
	s := &server{}
	var err error
	p.B.Run(t, func() {
		if s.prog, err = NewProgram(1); err != nil {
			return
		}
		if err = s.prog.AddListener(netip.AddrPortFrom(netip.IPv6Unspecified(), port), true); err != nil {
			return
		}
		if s.sock, err = Open(p.IfindexB(), 0, Options{RingSize: 64}); err != nil {
			return
		}
		if err = s.prog.SetSocket(0, s.sock); err != nil {
			return
		}
		err = s.prog.Attach(p.IfindexB())
	})
	t.Cleanup(func() {
		if s.sock != nil {
			_ = s.sock.Close()
		}
		if s.prog != nil {
			_ = s.prog.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("program %d attached in %s mode; socket zero-copy %v", s.prog.ID(), s.prog.Mode(), s.sock.ZeroCopy())
	return s
}

// echoOne waits (up to 30 s) for one frame, parses it, answers it with its
// own payload and returns what it parsed.
func (s *server) echoOne(t *testing.T) (Header, []byte) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(s.sock.FD()), Events: unix.POLLIN}}
		_, _ = unix.Poll(fds, 100)
		if s.sock.Receive(16) == 0 {
			continue
		}
		var h Header
		payload, ok := Parse(s.sock.Frame(0), &h)
		if !ok {
			t.Fatalf("frame not parsed: % x", s.sock.Frame(0))
		}
		got := bytes.Clone(payload)
		f := s.sock.TxFrame()
		n := Build(f, &h, h.Dst, h.Src, got)
		if n == 0 {
			t.Fatal("reply not built")
		}
		s.sock.Transmit(n)
		if e := s.sock.Kick(); e != 0 {
			t.Fatalf("kick: %v", e)
		}
		s.sock.Release(1)
		return h, got
	}
	t.Fatal("no frame within 30 s")
	return Header{}, nil
}

func TestSocketEchoesOverVeth(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	s := newServer(t, p, 9999)
	for _, dst := range []netip.Addr{p.B4, p.B6} {
		c := dialFromA(t, p, netip.AddrPortFrom(dst, 9999))
		msg := []byte("hello over AF_XDP to " + dst.String())
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		h, got := s.echoOne(t)
		if !bytes.Equal(got, msg) || h.Dst != netip.AddrPortFrom(dst, 9999) || h.Src != c.LocalAddr().(*net.UDPAddr).AddrPort() {
			t.Fatalf("parsed %q from %v to %v, want %q from %v to %v:9999", got, h.Src, h.Dst, msg, c.LocalAddr(), dst)
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no reply from %v (a bad checksum is dropped by the kernel): %v", dst, err)
		}
		if !bytes.Equal(buf[:n], msg) {
			t.Fatalf("reply %q, want %q", buf[:n], msg)
		}
	}
	st, err := s.sock.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// TxRingEmpty counts kicks that found the ring empty once sent: normal.
	if st.RxDropped+st.RxInvalid+st.TxInvalid+st.RxRingFull+st.FillRingEmpty != 0 {
		t.Fatalf("ring stats %+v, want no drops or invalid descriptors", st)
	}
}

// TestProgramPassesTheRest: TCP to the redirected port, UDP to another
// port and ICMP echo reach the kernel of B while the program is attached.
func TestProgramPassesTheRest(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	s := newServer(t, p, 9999)
	var tl net.Listener
	var ul *net.UDPConn
	var err error
	p.B.Run(t, func() {
		if tl, err = net.Listen("tcp", ":9999"); err == nil {
			ul, err = net.ListenUDP("udp", &net.UDPAddr{Port: 9998})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	defer ul.Close()
	var tc net.Conn
	var uc *net.UDPConn
	p.A.Run(t, func() {
		if tc, err = net.DialTimeout("tcp", netip.AddrPortFrom(p.B4, 9999).String(), 30*time.Second); err == nil {
			uc, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.B6, 9998)))
		}
	})
	if err != nil {
		t.Fatalf("TCP to the redirected port or UDP socket in A: %v", err)
	}
	tc.Close()
	defer uc.Close()
	if _, err := uc.Write([]byte("other port")); err != nil {
		t.Fatal(err)
	}
	_ = ul.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 64)
	n, _, err := ul.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "other port" {
		t.Fatalf("UDP to another port did not reach the kernel socket: %q %v", buf[:n], err)
	}
	pingB(t, p)
	if n := s.sock.Receive(16); n != 0 {
		t.Fatalf("the socket received %d frames of traffic that should have passed", n)
	}
}

// pingB sends one ICMP echo request from A to B's IPv4 address and waits
// for the reply (B's kernel answers it only if the program passed it).
func pingB(t *testing.T, p *netnstest.Pair) {
	t.Helper()
	var fd int
	var err error
	p.A.Run(t, func() { fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP) })
	if err != nil {
		t.Fatalf("ICMP socket: %v", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(30 * time.Second))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	req := []byte{8, 0, 0, 0, 0x5d, 0x2a, 0, 1, 'p', 'i', 'n', 'g'} // echo request
	c := fold(sum16(req))
	req[2], req[3] = byte(c>>8), byte(c)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrInet4{Addr: p.B4.As4()}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 128)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0) // the IP header, then ICMP
		if err != nil {
			t.Fatalf("no ICMP echo reply from B: %v", errors.Join(err))
		}
		if n >= 20+12 && buf[20] == 0 && bytes.Equal(buf[20+4:n], req[4:]) {
			return
		}
	}
}

// TestCloseDetaches: the interface shows the program while it is attached
// and nothing of it after Close.
func TestCloseDetaches(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	before := p.B.IP(t, "-d", "link", "show", p.DevB)
	s := newServer(t, p, 9999)
	if out := p.B.IP(t, "link", "show", p.DevB); !strings.Contains(out, "xdp") {
		t.Fatalf("attached, but ip link shows no program:\n%s", out)
	}
	if err := s.prog.Close(); err != nil {
		t.Fatal(err)
	}
	s.prog = nil
	if after := p.B.IP(t, "-d", "link", "show", p.DevB); after != before {
		t.Fatalf("the interface changed:\nbefore %s\nafter  %s", before, after)
	}
}

// TestAttachedShowsProgramAndSockets: what inspect reads back from the
// kernel names the interface, the listeners and the queue's socket.
func TestAttachedShowsProgramAndSockets(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	s := newServer(t, p, 9999)
	var list []Attachment
	var socks []SocketInfo
	var err, serr error
	p.B.Run(t, func() {
		socks, serr = Sockets()
		list, err = Attached(socks)
	})
	if err != nil {
		t.Fatal(err)
	}
	wantSockets := 1
	if errors.Is(serr, ErrNoSocketDiag) {
		t.Logf("sockets not checked: %v", serr)
		wantSockets = 0
	} else if serr != nil {
		t.Fatal(serr)
	}
	for _, a := range list {
		if a.ProgramID != s.prog.ID() {
			continue // another namespace's
		}
		// The wildcard listener is B's addresses: the two the pair set (and
		// the IPv6 link-local one if the kernel had made it by then).
		want := []netip.AddrPort{netip.AddrPortFrom(p.B4, 9999), netip.AddrPortFrom(p.B6, 9999)}
		if a.Iface != p.DevB || len(a.Listeners) < 2 || len(a.Listeners) > 3 || !slices.Contains(a.Listeners, want[0]) || !slices.Contains(a.Listeners, want[1]) ||
			len(a.Sockets) != wantSockets || (wantSockets == 1 && (a.Sockets[0].Queue != 0 || a.Sockets[0].UID != 0)) {
			t.Fatalf("attachment %+v, want %s with %v and one socket on queue 0", a, p.DevB, want)
		}
		return
	}
	t.Fatalf("program %d not among %+v", s.prog.ID(), list)
}
