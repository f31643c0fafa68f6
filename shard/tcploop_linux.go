package shard

import (
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/metrics"
)

const defaultTCPShape = TCPShapeLoop

// tcpLoop is the event-loop shape of a TCP shard: one goroutine locked to
// its OS thread runs epoll over the shard's listener and every connection
// it accepted, with non-blocking reads and writes, as gnet does. The handler
// is only ever called from this thread, and no goroutine exists per
// connection.
type tcpLoop struct {
	t      *tcpShard
	epfd   int
	evfd   int // eventfd: stop and close requests
	lnfd   int
	conns  map[int]*loopConn
	events []unix.EpollEvent
	rbuf   []byte      // one read buffer for the whole loop
	hard   atomic.Bool // Close: cut everything now

	fdMu   sync.Mutex // guards closed: wake must not write to a recycled evfd
	closed bool       // epfd and evfd are closed

	acceptPaused time.Time // accept failed for lack of resources: listener off until then
	draining     bool      // stopping gracefully: no accepts, connections close when quiet
	acceptErrs   map[string]bool
}

// loopConn is one connection's state; only the loop touches it.
type loopConn struct {
	fd         int
	src        netip.AddrPort
	in         []byte // bytes read, not yet a complete message
	out        []byte // replies not yet written
	lastMsg    time.Time
	lastActive time.Time // last byte read or written
	outSince   time.Time // when out last went from empty to non-empty
	eof        bool      // the client half-closed: close once out is written
	mask       uint32    // events registered with epoll
}

// outLimit is how many reply bytes a connection may have waiting before the
// loop stops reading its requests: a client that does not read its replies
// gets backpressure, not an unbounded buffer (and --write-timeout later).
const outLimit = 1 << 20

func newTCPLoop(t *tcpShard) (*tcpLoop, error) {
	l := &tcpLoop{t: t, conns: map[int]*loopConn{}, events: make([]unix.EpollEvent, 256), rbuf: make([]byte, 64<<10), acceptErrs: map[string]bool{}, epfd: -1, evfd: -1}
	fail := func(err error) (*tcpLoop, error) {
		l.closeFDs()
		return nil, err
	}
	var err error
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fail(os.NewSyscallError("epoll_create1", err))
	}
	if l.evfd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return fail(os.NewSyscallError("eventfd", err))
	}
	rc, err := t.ln.SyscallConn()
	if err != nil {
		return fail(err)
	}
	_ = rc.Control(func(fd uintptr) { l.lnfd = int(fd) })
	for _, fd := range []int{l.evfd, l.lnfd} {
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return fail(os.NewSyscallError("epoll_ctl", err))
		}
	}
	return l, nil
}

// closeFDs closes the loop's own descriptors once; wake is a no-op after.
func (l *tcpLoop) closeFDs() {
	l.fdMu.Lock()
	defer l.fdMu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	if l.epfd >= 0 {
		unix.Close(l.epfd)
	}
	if l.evfd >= 0 {
		unix.Close(l.evfd)
	}
}

// hardStop makes a running loop cut every connection and return.
func (l *tcpLoop) hardStop() {
	l.hard.Store(true)
	l.t.stopping.Store(true)
	l.wake()
}

// closeIdle releases a loop that never ran.
func (l *tcpLoop) closeIdle() {
	_ = l.t.ln.Close()
	l.closeFDs()
}

// wake asks the loop to look at t.stopping (and l.hard). After the loop
// has exited it does nothing: its eventfd number may belong to a new file.
func (l *tcpLoop) wake() {
	l.fdMu.Lock()
	defer l.fdMu.Unlock()
	if l.closed {
		return
	}
	one := uint64(1)
	_, _ = unix.Write(l.evfd, (*[8]byte)(unsafe.Pointer(&one))[:])
}

func (l *tcpLoop) run() error {
	runtime.LockOSThread()
	defer func() {
		for _, c := range l.conns {
			l.closeConn(c, metrics.CloseShutdown)
		}
		_ = l.t.ln.Close()
		l.closeFDs()
	}()
	if l.t.cpu >= 0 {
		if err := pinThread(l.t.cpu); err != nil {
			return err
		}
	}
	lastSweep := time.Now()
	for {
		timeout := 250
		if !l.acceptPaused.IsZero() || l.draining {
			timeout = 10
		}
		n, err := unix.EpollWait(l.epfd, l.events, timeout)
		if err != nil && err != unix.EINTR {
			return os.NewSyscallError("epoll_wait", err)
		}
		for _, ev := range l.events[:max(n, 0)] {
			fd := int(ev.Fd)
			switch {
			case fd == l.evfd:
				var b [8]byte
				_, _ = unix.Read(l.evfd, b[:])
			case fd == l.lnfd:
				l.accept()
			default:
				if c := l.conns[fd]; c != nil {
					l.serve(c, ev.Events)
				}
			}
		}
		if l.t.stopping.Load() {
			if l.hard.Load() {
				return nil // the deferred cleanup cuts every connection
			}
			// Graceful: no new connections; the open ones go on being
			// served and close once quiet (drainIdle) or at Close.
			if !l.draining {
				l.draining = true
				if l.acceptPaused.IsZero() {
					_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.lnfd, nil)
				}
				l.acceptPaused = time.Time{}
				_ = l.t.ln.Close()
			}
			l.closeQuiet(time.Now())
			if len(l.conns) == 0 {
				return nil
			}
		}
		now := time.Now()
		if !l.acceptPaused.IsZero() && now.After(l.acceptPaused) && !l.draining {
			l.acceptPaused = time.Time{}
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.lnfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.lnfd)})
		}
		if now.Sub(lastSweep) >= 100*time.Millisecond {
			l.sweep(now)
			lastSweep = now
		}
	}
}

func (l *tcpLoop) accept() {
	for i := 0; i < 64; i++ {
		fd, sa, err := unix.Accept4(l.lnfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			if err == unix.EAGAIN || err == unix.ECONNABORTED || err == unix.EINTR {
				return
			}
			// Out of descriptors or memory: the pending connection stays
			// queued and the level-triggered listener would wake us at once,
			// forever. Take it out of epoll for a moment instead.
			if !l.acceptErrs[err.Error()] {
				l.acceptErrs[err.Error()] = true
				l.t.log.Warn("accept failed; pausing accepts briefly and retrying (logged once per kind)", zap.Error(err))
			}
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.lnfd, nil)
			l.acceptPaused = time.Now().Add(50 * time.Millisecond)
			return
		}
		if !l.t.admit() {
			_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
			unix.Close(fd)
			continue
		}
		c := &loopConn{fd: fd, src: sockaddrToAddrPort(sa), lastMsg: time.Now(), lastActive: time.Now(), mask: unix.EPOLLIN | unix.EPOLLRDHUP}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: c.mask, Fd: int32(fd)}); err != nil {
			l.closeConn(c, metrics.CloseError)
			continue
		}
		l.conns[fd] = c
	}
}

// serve reads what the connection has, answers every complete message and
// writes the replies.
func (l *tcpLoop) serve(c *loopConn, events uint32) {
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !c.eof && len(c.out) < outLimit {
		if reason, done := l.read(c); done {
			if reason == metrics.CloseFrameTooLarge {
				l.flushBlocking(c, time.Now().Add(drainRead)) // answer what came before the bad frame
			}
			l.closeConn(c, reason)
			return
		}
	}
	if reason, done := l.flush(c); done {
		l.closeConn(c, reason)
		return
	}
	if c.eof && len(c.out) == 0 {
		l.closeConn(c, metrics.CloseEOF)
	}
}

// read drains the socket into c.in and serves complete messages.
func (l *tcpLoop) read(c *loopConn) (reason int, done bool) {
	t := l.t
	for i := 0; i < 8; i++ {
		n, err := unix.Read(c.fd, l.rbuf[:l.readSize()])
		if err == unix.EAGAIN {
			return 0, false
		}
		if err != nil {
			return metrics.CloseError, true
		}
		c.lastActive = time.Now()
		if n == 0 {
			c.eof = true
			if len(c.in) > 0 { // the last message may end with the stream
				out, consumed, _ := t.serveBytes(c.in, c.src, c.out, true)
				if len(c.out) == 0 && len(out) > 0 {
					c.outSince = time.Now()
				}
				c.out = out
				c.in = c.in[:copy(c.in, c.in[consumed:])]
			}
			return 0, false
		}
		var data []byte
		if len(c.in) == 0 {
			data = l.rbuf[:n] // the common case: nothing left over
		} else {
			c.in = append(c.in, l.rbuf[:n]...)
			data = c.in
		}
		out, consumed, ferr := t.serveBytes(data, c.src, c.out, false)
		if len(c.out) == 0 && len(out) > 0 {
			c.outSince = time.Now()
		}
		c.out = out
		if consumed > 0 {
			c.lastMsg = time.Now()
		}
		rest := data[consumed:]
		if len(c.in) == 0 {
			c.in = append(c.in[:0], rest...)
		} else {
			c.in = c.in[:copy(c.in, rest)]
		}
		if ferr != nil {
			return metrics.CloseFrameTooLarge, true
		}
		if n < l.readSize() {
			return 0, false
		}
	}
	return 0, false
}

func (l *tcpLoop) readSize() int {
	if l.t.framer == nil {
		return min(len(l.rbuf), l.t.cfg.MaxFrame)
	}
	return len(l.rbuf)
}

// flush writes what it can of c.out; EPOLLOUT covers the rest.
func (l *tcpLoop) flush(c *loopConn) (reason int, done bool) {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			return metrics.CloseError, true
		}
		c.out = c.out[:copy(c.out, c.out[n:])]
		c.outSince = time.Now()
		c.lastActive = c.outSince
	}
	l.updateEvents(c)
	return 0, false
}

// updateEvents registers what the connection waits for: requests while it
// has room for replies and the client still sends, writability while
// replies wait. Level-triggered epoll would spin on anything else.
func (l *tcpLoop) updateEvents(c *loopConn) {
	var mask uint32
	if !c.eof && len(c.out) < outLimit {
		mask |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if len(c.out) > 0 {
		mask |= unix.EPOLLOUT
	}
	if mask != c.mask {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: mask, Fd: int32(c.fd)})
		c.mask = mask
	}
}

// closeQuiet closes, during a graceful stop, the connections with nothing
// pending that have been quiet for drainIdle, the client's half-closed
// ones once answered, and counts what they leave unread.
func (l *tcpLoop) closeQuiet(now time.Time) {
	for _, c := range l.conns {
		if len(c.out) > 0 || now.Sub(c.lastActive) < drainIdle {
			continue
		}
		_ = unix.Shutdown(c.fd, unix.SHUT_WR)
		for {
			n, err := unix.Read(c.fd, l.rbuf)
			if n <= 0 || err != nil {
				break
			}
			l.t.mu.Lock()
			l.t.counts.DiscardedBytes += uint64(n)
			l.t.mu.Unlock()
		}
		l.closeConn(c, metrics.CloseShutdown)
	}
}

// sweep closes connections past their idle or write timeout.
func (l *tcpLoop) sweep(now time.Time) {
	for _, c := range l.conns {
		switch {
		case len(c.out) > 0 && now.Sub(c.outSince) > l.t.cfg.WriteTimeout:
			l.closeConn(c, metrics.CloseWriteTimeout)
		case now.Sub(c.lastMsg) > l.t.cfg.IdleTimeout:
			l.closeConn(c, metrics.CloseIdle)
		}
	}
}

// flushBlocking writes c.out until it is empty or the deadline passes.
func (l *tcpLoop) flushBlocking(c *loopConn, deadline time.Time) {
	for len(c.out) > 0 && time.Now().Before(deadline) {
		if _, done := l.flush(c); done {
			return
		}
		if len(c.out) > 0 {
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLOUT}}, int(time.Until(deadline)/time.Millisecond)+1)
		}
	}
}

func (l *tcpLoop) closeConn(c *loopConn, reason int) {
	if _, ok := l.conns[c.fd]; ok {
		delete(l.conns, c.fd)
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	}
	if reason == metrics.CloseShutdown && l.hard.Load() {
		_ = unix.SetsockoptLinger(c.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
	}
	unix.Close(c.fd)
	t := l.t
	t.mu.Lock()
	t.counts.Closed[reason]++
	t.counts.DiscardedBytes += uint64(len(c.in))
	t.ctr.Publish(&t.counts)
	t.mu.Unlock()
	c.in = nil
}

func sockaddrToAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}
