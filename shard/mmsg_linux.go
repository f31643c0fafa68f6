package shard

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/packet"
)

// mmsgConn drives recvmmsg/sendmmsg over mmsghdr, iovec, sockaddr and control
// arrays built once per shard. It is hand-written on purpose: x/net's batch
// API (ipv4.PacketConn.ReadBatch, and ipv6's) does the same calls but
// allocates per datagram, a net.UDPAddr among them (golang/net#126,
// golang/go#26838): 2 allocations (52 B) per datagram received, measured
// with x/net v0.59.0 and Go 1.26.8 (ReadBatch of 64 over loopback).
// Decoding the sockaddr ourselves into netip.AddrPort, and the control
// messages with unix.ParseOneSocketControlMessage, keeps the loop at zero
// allocations (TestShardLoopAllocatesNothing).
//
// The shard's thread waits for datagrams inside a blocking recvmmsg, as a C
// server's thread would, not on Go's netpoller: a locked goroutine parked
// on the netpoller is woken by handing its thread a P from another thread
// (two thread switches per wake-up); with the netpoller's own wake-ups this
// cost about a quarter of the CPU per query under DNS load here. SO_RCVTIMEO (rxWait) bounds each wait so
// the loop sees a stop or a close soon.
type mmsgConn struct {
	laddr   net.Addr
	rc      syscall.RawConn
	family  int  // of the socket: AF_INET or AF_INET6
	pktinfo bool // IP_PKTINFO/IPV6_RECVPKTINFO enabled (wildcard listener)

	rxHdrs  []unix.Mmsghdr
	rxNames []unix.RawSockaddrInet6
	rxIovs  []unix.Iovec
	rxOOB   []byte
	rxWant  int // datagrams asked of the current call
	rxN     int // result of the last call
	rxErrno syscall.Errno
	waitFn  func(fd uintptr)
	woken   atomic.Bool  // a past read deadline was set: stop waiting
	closed  atomic.Bool  // the shard closed the socket
	tid     atomic.Int32 // the shard's (locked) thread, to interrupt its wait
	// interrupted counts waits ended by a signal (tests).
	interrupted atomic.Uint64
	drainFn     func(fd uintptr)
	ready       bool // result of drainFn

	txHdrs   []unix.Mmsghdr
	txNames  []unix.RawSockaddrInet6
	txIovs   []unix.Iovec
	txOOB    []byte
	txFrom   int // first header of the current call
	txTo     int // one past the last
	txN      int
	txErrno  syscall.Errno
	sendCall func(fd uintptr)
}

// oobSpace fits the one IP_PKTINFO or IPV6_PKTINFO control message a reply
// carries; rxOOBSpace fits both, which a dual-stack socket receives for an
// IPv4 datagram.
var (
	oobSpace   = unix.CmsgSpace(unix.SizeofInet6Pktinfo)
	rxOOBSpace = unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(unix.SizeofInet4Pktinfo)
)

func newMmsgConn(rc syscall.RawConn, laddr net.Addr, msgs []rxMsg, pktinfo bool) (*mmsgConn, error) {
	m := &mmsgConn{laddr: laddr, rc: rc, pktinfo: pktinfo}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		sa, err := unix.Getsockname(int(fd))
		if err != nil {
			serr = os.NewSyscallError("getsockname", err)
			return
		}
		m.family = unix.AF_INET
		if _, ok := sa.(*unix.SockaddrInet6); ok {
			m.family = unix.AF_INET6
		}
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}

	n := len(msgs)
	m.rxHdrs = make([]unix.Mmsghdr, n)
	m.rxNames = make([]unix.RawSockaddrInet6, n)
	m.rxIovs = make([]unix.Iovec, n)
	m.txHdrs = make([]unix.Mmsghdr, n)
	m.txNames = make([]unix.RawSockaddrInet6, n)
	m.txIovs = make([]unix.Iovec, n)
	if pktinfo {
		m.rxOOB = make([]byte, n*rxOOBSpace)
		m.txOOB = make([]byte, n*oobSpace)
	}
	for i := range msgs {
		m.rxIovs[i].Base = &msgs[i].buf[0]
		m.rxIovs[i].SetLen(len(msgs[i].buf))
		h := &m.rxHdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&m.rxNames[i]))
		h.Iov = &m.rxIovs[i]
		h.SetIovlen(1)
		if pktinfo {
			h.Control = &m.rxOOB[i*rxOOBSpace]
		}
		t := &m.txHdrs[i].Hdr
		t.Name = (*byte)(unsafe.Pointer(&m.txNames[i]))
		t.Iov = &m.txIovs[i]
		t.SetIovlen(1)
	}
	m.waitFn = m.wait
	// Built once: a method value made per call would allocate.
	m.sendCall = func(fd uintptr) { m.send(fd) }
	m.drainFn = func(fd uintptr) { m.ready = m.recv(fd) }
	return m, nil
}

func (m *mmsgConn) batchIO() bool { return true }

// rxWait bounds one blocking recvmmsg: how soon a shard sees a stop or a
// close, and how often an idle shard wakes.
const rxWait = 50 * time.Millisecond

// detach takes a shard's socket out of Go's netpoller. A socket the runtime
// watches wakes its netpoller (epoll) on every datagram in and every reply
// freed: a thread switch per event that nobody waits for, which cost about a
// quarter of the CPU per DNS query here. The socket is duplicated into an
// *os.File in blocking mode, which the runtime does not watch, and the
// net.UDPConn is closed (its close removes the fd from epoll). The shard's
// thread then sleeps in recvmmsg itself, as a C server's would.
func detach(c *net.UDPConn) (*os.File, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup, err := dupFD(rc)
	if err != nil {
		return nil, err
	}
	if err := setBlocking(uintptr(dup)); err != nil {
		_ = unix.Close(dup)
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "udp:"+c.LocalAddr().String()) // blocking: not registered with the netpoller
	_ = c.Close()
	return f, nil
}

// setBlocking puts the socket in blocking mode with a receive timeout of
// rxWait. O_NONBLOCK belongs to the open file, which an upgrade shares with
// the next process (whose Go runtime sets it again): wait restores it.
func setBlocking(fd uintptr) error {
	tv := unix.NsecToTimeval(rxWait.Nanoseconds())
	if err := unix.SetsockoptTimeval(int(fd), unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
	}
	if err := unix.SetNonblock(int(fd), false); err != nil {
		return os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	return nil
}

// setReadDeadline with a past time stops the wait loop; other times are
// not supported (nothing sets them).
func (m *mmsgConn) setReadDeadline(t time.Time) error {
	if t.Before(time.Now()) {
		m.woken.Store(true)
		m.interrupt()
	}
	return nil
}

// interrupt ends the shard thread's blocking recvmmsg at once: a signal
// makes a socket call with a timeout return EINTR, never restarted
// (signal(7)). SIGURG is the Go runtime's own preemption signal, which its
// handler ignores when no preemption was asked for. A signal that lands
// just before the thread enters recvmmsg is missed; rxWait bounds that.
func (m *mmsgConn) interrupt() {
	if tid := m.tid.Load(); tid != 0 {
		_ = unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG)
	}
}

// resetRx readies the headers of the next receive.
func (m *mmsgConn) resetRx() {
	for i := 0; i < m.rxWant; i++ {
		h := &m.rxHdrs[i].Hdr
		h.Namelen = unix.SizeofSockaddrInet6
		if m.pktinfo {
			h.SetControllen(rxOOBSpace)
		}
		h.Flags = 0
	}
}

// recv runs one non-blocking recvmmsg (draining at a stop); false means
// the queue is empty.
func (m *mmsgConn) recv(fd uintptr) bool {
	m.resetRx()
	for {
		// MSG_TRUNC makes msg_len the datagram's real length, so a datagram
		// longer than its slot is seen as such (udp(7)).
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.rxHdrs[0])),
			uintptr(m.rxWant), unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
		switch errno {
		case 0:
			m.rxN, m.rxErrno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			m.rxN, m.rxErrno = 0, 0
			return false
		default:
			m.rxN, m.rxErrno = 0, errno
			return true
		}
	}
}

// wait runs one blocking recvmmsg: it returns when a datagram came (and
// takes what else is queued, MSG_WAITFORONE), or after rxWait with rxN 0.
func (m *mmsgConn) wait(fd uintptr) {
	m.resetRx()
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.rxHdrs[0])),
		uintptr(m.rxWant), unix.MSG_WAITFORONE|unix.MSG_TRUNC, 0, 0)
	switch errno {
	case 0:
		m.rxN, m.rxErrno = int(n), 0
	case unix.EAGAIN:
		// The timeout, or the file was made non-blocking again (an
		// upgrade's new process): make sure the next wait blocks.
		m.rxN, m.rxErrno = 0, 0
		if fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0); err == nil && fl&unix.O_NONBLOCK != 0 {
			_, _ = unix.FcntlInt(fd, unix.F_SETFL, fl&^unix.O_NONBLOCK)
		}
	case unix.EINTR:
		m.rxN, m.rxErrno = 0, 0
		m.interrupted.Add(1)
	default:
		m.rxN, m.rxErrno = 0, errno
	}
}

func (m *mmsgConn) readBatch(msgs []rxMsg) (int, error) {
	m.rxWant = len(msgs)
	if m.tid.Load() == 0 {
		m.tid.Store(int32(unix.Gettid())) // the shard's thread is locked: this never changes
	}
	for {
		switch {
		case m.closed.Load():
			return 0, net.ErrClosed
		case m.woken.Load():
			return 0, os.ErrDeadlineExceeded
		}
		if err := m.rc.Control(m.waitFn); err != nil {
			return 0, m.closedErr(err)
		}
		if m.closed.Load() {
			return 0, net.ErrClosed // Close means at once: a late batch is not served
		}
		if m.rxN > 0 || m.rxErrno != 0 {
			return m.finishRead(msgs)
		}
	}
}

func (m *mmsgConn) drainBatch(msgs []rxMsg) (int, error) {
	m.rxWant = len(msgs)
	if err := m.rc.Control(m.drainFn); err != nil {
		return 0, m.closedErr(err)
	}
	if !m.ready {
		return 0, nil
	}
	return m.finishRead(msgs)
}

// closedErr maps an error of RawConn.Control, which only fails on a closed
// file (poll's "use of closed file", not os.ErrClosed), to net.ErrClosed,
// which the shard loop takes as the end.
func (m *mmsgConn) closedErr(err error) error {
	return fmt.Errorf("%w (%v)", net.ErrClosed, err)
}

// markClosed tells the loop the socket is closing and wakes it.
func (m *mmsgConn) markClosed() {
	m.closed.Store(true)
	m.interrupt()
}

func (m *mmsgConn) finishRead(msgs []rxMsg) (int, error) {
	if m.rxErrno != 0 {
		return 0, &net.OpError{Op: "read", Net: "udp", Addr: m.laddr, Err: os.NewSyscallError("recvmmsg", m.rxErrno)}
	}
	for i := 0; i < m.rxN; i++ {
		h := &m.rxHdrs[i]
		msg := &msgs[i]
		msg.n = int(h.Len)
		msg.trunc = msg.n >= len(msg.buf) // slots are MaxPacket+1 long
		msg.src = decodeSockaddr(&m.rxNames[i])
		msg.dst = netip.Addr{}
		if m.pktinfo && h.Hdr.Controllen > 0 {
			msg.dst = parsePktinfo(m.rxOOB[i*rxOOBSpace : i*rxOOBSpace+int(h.Hdr.Controllen)])
		}
	}
	return m.rxN, nil
}

// decodeSockaddr turns a kernel sockaddr into an unmapped AddrPort without allocating
// (except for a zone on link-local IPv6 senders).
func decodeSockaddr(rsa *unix.RawSockaddrInet6) netip.AddrPort {
	switch rsa.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), ntohs(sa.Port))
	case unix.AF_INET6:
		ip := netip.AddrFrom16(rsa.Addr)
		if ip.Is4In6() {
			ip = ip.Unmap()
		} else if rsa.Scope_id != 0 {
			ip = ip.WithZone(strconv.FormatUint(uint64(rsa.Scope_id), 10))
		}
		return netip.AddrPortFrom(ip, ntohs(rsa.Port))
	}
	return netip.AddrPort{}
}

// encodeSockaddr writes dst in the socket's family; false if it cannot be sent there.
func encodeSockaddr(rsa *unix.RawSockaddrInet6, family int, dst netip.AddrPort) (uint32, bool) {
	ip := dst.Addr()
	if !ip.IsValid() || dst.Port() == 0 {
		return 0, false
	}
	if family == unix.AF_INET {
		if !ip.Is4() {
			return 0, false
		}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: htons(dst.Port()), Addr: ip.As4()}
		return unix.SizeofSockaddrInet4, true
	}
	*rsa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: htons(dst.Port()), Addr: ip.As16()}
	if z := ip.Zone(); z != "" {
		if id, err := strconv.ParseUint(z, 10, 32); err == nil {
			rsa.Scope_id = uint32(id)
		} else if ifi, err := net.InterfaceByName(z); err == nil {
			rsa.Scope_id = uint32(ifi.Index)
		}
	}
	return unix.SizeofSockaddrInet6, true
}

// parsePktinfo returns the local address from an IP_PKTINFO or IPV6_PKTINFO
// control message. IP_PKTINFO wins when both are there (an IPv4 datagram on a
// dual-stack socket): its ipi_spec_dst is the local address the kernel would
// answer from, a unicast address even for a broadcast datagram, where
// IPV6_PKTINFO carries the broadcast destination itself. The messages are
// walked with unix.ParseOneSocketControlMessage, as wireguard-go's
// getGSOSize and quic-go's ReadPacket do: it checks each header's length
// against the buffer and allocates nothing.
func parsePktinfo(oob []byte) netip.Addr {
	var v6 netip.Addr
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break
		}
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			return netip.AddrFrom4([4]byte(data[pktinfo4SpecDst:]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			v6 = netip.AddrFrom16([16]byte(data[pktinfo6Addr:])).Unmap()
		}
		oob = rest
	}
	return v6
}

// Offsets of the addresses in struct in_pktinfo and struct in6_pktinfo.
const (
	pktinfo4SpecDst = unsafe.Offsetof(unix.Inet4Pktinfo{}.Spec_dst)
	pktinfo6Addr    = unsafe.Offsetof(unix.Inet6Pktinfo{}.Addr)
)

// putPktinfo writes a control message that sets the reply's source address
// and returns its length; 0 when src should be left to the kernel.
func (m *mmsgConn) putPktinfo(oob []byte, src netip.Addr) int {
	if !src.IsValid() || src.IsUnspecified() || src.IsMulticast() {
		return 0
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	data := oob[unix.CmsgLen(0):]
	if m.family == unix.AF_INET {
		if !src.Is4() {
			return 0
		}
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		p := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
		*p = unix.Inet4Pktinfo{Spec_dst: src.As4()}
		return unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	}
	// On a dual-stack socket the kernel takes IPV6_PKTINFO with a mapped
	// address for IPv4 replies too (ip_cmsg_send with allow_ipv6).
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	p := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
	*p = unix.Inet6Pktinfo{Addr: src.As16()}
	return unix.CmsgSpace(unix.SizeofInet6Pktinfo)
}

// send runs one non-blocking sendmmsg over txHdrs[txFrom:txTo].
func (m *mmsgConn) send(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.txHdrs[m.txFrom])),
			uintptr(m.txTo-m.txFrom), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			m.txN, m.txErrno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			// Send buffer full: wait until writable (the socket is not in the
			// netpoller), then try again; a stop still sends its replies,
			// only a close gives up.
			if m.closed.Load() {
				m.txN, m.txErrno = 0, unix.EAGAIN
				return true
			}
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, int(rxWait.Milliseconds()))
			continue
		default:
			m.txN, m.txErrno = 0, errno
			return true
		}
	}
}

func (m *mmsgConn) writeBatch(replies []packet.Reply) (sent int, bytes uint64, failed int, err error) {
	used := 0 // iovecs filled, to clear afterwards
	for len(replies) > 0 {
		k := 0
		for _, r := range replies {
			if k == len(m.txHdrs) {
				break
			}
			replies = replies[1:]
			namelen, ok := encodeSockaddr(&m.txNames[k], m.family, r.Dst)
			if !ok {
				failed++
				if err == nil {
					err = errBadDestination
				}
				continue
			}
			h := &m.txHdrs[k].Hdr
			h.Namelen = namelen
			if len(r.Data) > 0 {
				m.txIovs[k].Base = &r.Data[0]
			} else {
				m.txIovs[k].Base = nil
			}
			m.txIovs[k].SetLen(len(r.Data))
			h.Control = nil
			h.SetControllen(0)
			if m.pktinfo {
				oob := m.txOOB[k*oobSpace : (k+1)*oobSpace]
				if l := m.putPktinfo(oob, r.Src); l > 0 {
					h.Control = &oob[0]
					h.SetControllen(l)
				}
			}
			k++
		}
		used = max(used, k)
		for from := 0; from < k; {
			m.txFrom, m.txTo = from, k
			if werr := m.rc.Control(m.sendCall); werr != nil {
				werr = m.closedErr(werr)
				failed += k - from + len(replies)
				return sent, bytes, failed, werr // socket closed
			}
			if m.txErrno != 0 {
				// sendmmsg reports an error only for the first datagram of the
				// call (no route, EPERM from a firewall...): skip it and go on.
				failed++
				from++
				if err == nil {
					err = os.NewSyscallError("sendmmsg", m.txErrno)
				}
				continue
			}
			for i := from; i < from+m.txN; i++ {
				bytes += uint64(m.txHdrs[i].Len)
			}
			sent += m.txN
			from += m.txN
		}
	}
	// Drop references to the reply slab so nothing outlives the batch.
	clear(m.txIovs[:used])
	return sent, bytes, failed, err
}

func ntohs(v uint16) uint16 {
	return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&v))[:])
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return *(*uint16)(unsafe.Pointer(&b[0]))
}
