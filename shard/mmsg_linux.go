package shard

import (
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/shard/mmsg"
)

// mmsgConn drives recvmmsg/sendmmsg over two mmsg.Batch arrays built once
// per shard, one per direction: package mmsg says why they are hand-written
// rather than x/net's batch API, which allocates per datagram. The loop
// stays at zero allocations (TestShardLoopAllocatesNothing).
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
	// UDP_GRO is to go off at the first idle moment (groOffIfEmpty), and
	// what to tell the shard then.
	groOffIdle bool
	groOffDone func()

	rx      mmsg.Batch // by value: one indirection less per datagram
	rxWant  int        // datagrams asked of the current call
	rxN     int        // result of the last call
	rxErrno syscall.Errno
	waitFn  func(fd uintptr)
	woken   atomic.Bool  // a past read deadline was set: stop waiting
	closed  atomic.Bool  // the shard closed the socket
	tid     atomic.Int32 // the shard's (locked) thread, to interrupt its wait
	// interrupted counts waits ended by a signal (tests).
	interrupted atomic.Uint64
	drainFn     func(fd uintptr)
	ready       bool // result of drainFn

	tx       mmsg.Batch
	txFrom   int // first header of the current call
	txTo     int // one past the last
	txN      int
	txErrno  syscall.Errno
	sendCall func(fd uintptr)
	txGroups []txGroup // what each header of the current call carries
	txIovs   int       // iovecs filled, to clear afterwards

	// Grouped replies (GSO, gso_linux.go), set by setupGSO.
	gso         bool            // group replies into UDP_SEGMENT sends
	gsoMax      int             // segments this size or larger are not grouped (the kernel said EINVAL)
	gsoCounts   *metrics.Counts // where GSO sends are counted
	gsoRefusals uint64          // GSO sends the kernel refused, sent again one by one (tests)
	gsoRefusal  syscall.Errno   // the last refusal's errno (tests)

	// With AF_XDP sockets (xdp_linux.go): the loop polls them and this one.
	pollFds []unix.PollFd // this socket first
	pollFn  func(fd uintptr)
	pollErr syscall.Errno
}

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

	rxo, txo := mmsg.Options{Addrs: true}, mmsg.Options{Addrs: true}
	if pktinfo {
		rxo.Control, txo.Control = mmsg.RecvPktinfoSpace, mmsg.SendPktinfoSpace
	}
	// Room for the UDP_GRO message even with GRO off: without it the
	// message would be cut (MSG_CTRUNC) and a coalesced buffer taken for
	// one datagram. A socket read with GRO off gets coalesced buffers when
	// the new process of an upgrade turns UDP_GRO on, while this one still
	// serves until the hand-over.
	rxo.Control += mmsg.GROSpace
	m.rx, m.tx = *mmsg.NewBatch(len(msgs), rxo), *mmsg.NewBatch(len(msgs), txo)
	m.txGroups = make([]txGroup, len(msgs))
	for i := range msgs {
		m.rx.SetBuf(i, msgs[i].buf)
	}
	m.waitFn = m.wait
	// Built once: a method value made per call would allocate.
	m.sendCall = m.send
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
	f, err := dupFile(c, "udp:"+c.LocalAddr().String(), setBlocking) // blocking: not registered with the netpoller
	if err != nil {
		return nil, err
	}
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

// recv runs one non-blocking recvmmsg (draining at a stop); false means
// the queue is empty.
func (m *mmsgConn) recv(fd uintptr) bool {
	// MSG_TRUNC makes msg_len the datagram's real length, so a datagram
	// longer than its slot is seen as such (udp(7)).
	n, errno := m.rx.Recv(fd, m.rxWant, unix.MSG_DONTWAIT|unix.MSG_TRUNC)
	for errno == unix.EINTR {
		n, errno = m.rx.Recv(fd, m.rxWant, unix.MSG_DONTWAIT|unix.MSG_TRUNC)
	}
	if errno == unix.EAGAIN {
		m.rxN, m.rxErrno = 0, 0
		return false
	}
	m.rxN, m.rxErrno = n, errno // n is 0 on an error
	return true
}

// wait runs one blocking recvmmsg: it returns when a datagram came (and
// takes what else is queued, MSG_WAITFORONE), or after rxWait with rxN 0.
func (m *mmsgConn) wait(fd uintptr) {
	n, errno := m.rx.Recv(fd, m.rxWant, unix.MSG_WAITFORONE|unix.MSG_TRUNC)
	switch errno {
	case 0:
		m.rxN, m.rxErrno = n, 0
	case unix.EAGAIN:
		// The timeout, or the file was made non-blocking again (an
		// upgrade's new process): make sure the next wait blocks.
		m.rxN, m.rxErrno = 0, 0
		if fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0); err == nil && fl&unix.O_NONBLOCK != 0 {
			_, _ = unix.FcntlInt(fd, unix.F_SETFL, fl&^unix.O_NONBLOCK)
		}
		if m.groOffIdle {
			m.groOffIfEmpty(fd)
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
		msg := &msgs[i]
		msg.src = m.rx.Addr(i)
		// MSG_TRUNC: a lone datagram's real length, which may exceed the
		// slot; a coalesced buffer fits a 64 KiB slot (with GRO off, or a
		// smaller MaxPacket, the datagrams past the slot count truncated).
		// The control messages are read with GRO off too (newMmsgConn).
		var seg int
		msg.dst, seg = m.rx.RecvControl(i)
		msg.set(m.rx.MsgLen(i), seg)
	}
	return m.rxN, nil
}

// send runs one non-blocking sendmmsg over datagrams txFrom..txTo-1.
func (m *mmsgConn) send(fd uintptr) {
	for {
		n, errno := m.tx.Send(fd, m.txFrom, m.txTo, unix.MSG_DONTWAIT)
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN && !m.closed.Load():
			// Send buffer full: wait until writable (the socket is not in the
			// netpoller), then try again; a stop still sends its replies,
			// only a close gives up (with EAGAIN).
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, int(rxWait.Milliseconds()))
			continue
		}
		m.txN, m.txErrno = n, errno // n is 0 on an error
		return
	}
}

// writeBatch sends the replies in sendmmsg calls of up to a batch of
// messages, each one reply or, with GSO, a group of them (fill, which
// counts the groups): ready runs after the first fill, before its send.
// The first fill takes every reply of a flush (the reply queue holds at
// most a batch, and each reply takes at most one header and one iovec), so
// every GSO send is counted before ready publishes the counters.
func (m *mmsgConn) writeBatch(replies []packet.Reply, ready func()) (failed int, err error) {
	var t txTally
	m.txIovs = 0
	for next := 0; next < len(replies); {
		k, end, bad := m.fill(replies, next)
		if bad > 0 {
			t.failed += bad
			t.fail(errBadDestination)
		}
		if ready != nil {
			ready()
			ready = nil
		}
		if m.sendFilled(k, replies, &t) {
			t.failed += len(replies) - end
			break
		}
		next = end
	}
	// Drop references to the reply slab so nothing outlives the batch.
	m.tx.ClearBufs(m.txIovs)
	return t.failed, t.err
}

// groOffIfEmpty turns UDP_GRO off on a socket that came with it on (an
// upgrade from a process with GRO on to one with GRO off), at an idle
// moment: a wait that saw nothing. The kernel coalesces a flow's datagrams
// as it queues them, and tells a buffer's segment size only while UDP_GRO
// is on, so a coalesced buffer still queued when it goes off would be read
// as one long datagram. If the queue is empty once it is off, whatever
// comes from then on is queued plain; if not, it goes back on (what came
// in between is read as GRO buffers, exactly) and the next idle moment
// tries again.
func (m *mmsgConn) groOffIfEmpty(fd uintptr) {
	if mmsg.SetGRO(fd, false) != nil {
		return
	}
	if mmsg.Queued(fd) {
		_ = mmsg.SetGRO(fd, true)
		return
	}
	m.groOffIdle = false
	if m.groOffDone != nil {
		m.groOffDone()
	}
}

// setGRO sets UDP_GRO on a shard socket as mode asks, and reports whether it
// is on. OffloadOff leaves it on where the socket has it (inherited from a
// process with GRO on, whose coalesced buffers may be queued) and says so
// with offWhenIdle: the shard reads GRO buffers until an idle moment turns
// it off (groOffIfEmpty). OffloadAuto takes the kernel's refusal (before
// Linux 5.0) as off; OffloadOn returns it.
func setGRO(rc syscall.RawConn, mode Offload) (on, offWhenIdle bool, err error) {
	var serr error
	if cerr := rc.Control(func(fd uintptr) {
		if mode == OffloadOff {
			on = mmsg.GROOn(fd)
			return
		}
		serr = mmsg.SetGRO(fd, true)
	}); cerr != nil {
		return false, false, cerr
	}
	switch {
	case mode == OffloadOff:
		return on, on, nil // a kernel without the option has it off
	case serr == nil:
		return true, false, nil
	case mode == OffloadOn:
		return false, false, os.NewSyscallError("setsockopt UDP_GRO", serr)
	}
	return false, false, nil
}

// groOff turns UDP_GRO off at once, for a socket read one datagram per
// call (which cannot read GRO buffers).
func groOff(rc syscall.RawConn) {
	_ = rc.Control(func(fd uintptr) { _ = mmsg.SetGRO(fd, false) })
}

// groOffWhenIdle has shard s read GRO buffers from its socket, which came
// with UDP_GRO on though GRO is asked off (an upgrade), until an idle
// moment turns it off (groOffIfEmpty); from then on s observes no GRO
// histogram.
func (s *shard) groOffWhenIdle(m *mmsgConn) {
	m.groOffIdle = true
	m.groOffDone = func() {
		s.gro = false
		s.log.Info("UDP GRO turned off on the inherited socket, its queue empty")
	}
	s.log.Info("the inherited socket has UDP GRO on though GRO is off: it stays on until its queue, which may hold coalesced datagrams, is seen empty")
}
