package shard

import (
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/metrics"
)

const defaultTCPShape = TCPShapeLoop

// tcpLoop is the event-loop shape of a TCP shard: one goroutine locked to
// its OS thread runs epoll over the shard's listener and every connection
// it accepted, with non-blocking reads and writes, as gnet does. The handler
// is only ever called from this thread, and no goroutine exists per
// connection.
//
// Replies are built in one buffer of the loop (wout) and written at once;
// only what the kernel does not take is copied into the connection's own
// queue. Input is read into one buffer of the loop (rbuf); only a partial
// frame (or messages waiting for room for their replies) is kept by the
// connection. An idle connection holds no buffer.
type tcpLoop struct {
	t      *tcpShard
	epfd   int
	evfd   int // eventfd: stop and close requests
	lnfd   int
	conns  map[int]*loopConn
	events []unix.EpollEvent
	rbuf   []byte      // one read buffer for the whole loop
	wout   []byte      // one reply buffer for the whole loop (outMax)
	hard   atomic.Bool // Close: cut everything now

	fdMu   sync.Mutex // guards closed: wake must not write to a recycled evfd
	closed bool       // epfd and evfd are closed

	acceptPaused  time.Time // accept failed for lack of resources: listener off until then
	acceptBackoff time.Duration
	draining      bool        // stopping gracefully: no accepts, connections finish what they were sent
	starved       []*loopConn // connections waiting for the shard's memory budget
}

// loopConn is one connection's state; only the loop touches it.
type loopConn struct {
	fd         int
	src        netip.AddrPort
	cb         connBuf
	lastMsg    time.Time // last complete message (or the accept)
	lastActive time.Time // last byte read or written
	outSince   time.Time // when the reply queue last made progress
	eof        bool      // the client half-closed: close once answered
	waiting    bool      // complete messages wait in cb.in for room for their replies
	starved    bool      // in tcpLoop.starved
	fence      int       // stopping: bytes still to read of what the client had sent; -1 before a stop
	answered   bool      // a message completed on this connection
	lingering  bool      // stopping: answered and FIN sent; discarding until the client closes
	lingerEnd  time.Time
	lingerOut  outProgress // lingering: the client taking its unacknowledged replies
	mask       uint32      // events registered with epoll
}

func newTCPLoop(t *tcpShard) (*tcpLoop, error) {
	l := &tcpLoop{t: t, conns: map[int]*loopConn{}, events: make([]unix.EpollEvent, 256), rbuf: make([]byte, 64<<10), wout: make([]byte, 0, t.outMax), epfd: -1, evfd: -1}
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

// run is the loop: wait for events and answer them, give connections that
// waited for memory another go, drain on a stop, resume accepting after a
// back-off, and close connections past their timeouts.
func (l *tcpLoop) run() error {
	runtime.LockOSThread()
	defer l.shutdown()
	if l.t.cpu >= 0 {
		if err := pinThread(l.t.cpu); err != nil {
			return err
		}
	}
	lastSweep := time.Now()
	var y yielder
	for {
		if err := l.poll(); err != nil {
			return err
		}
		if len(l.starved) > 0 {
			l.retryStarved()
		}
		if l.t.stopping.Load() && l.stopStep() {
			return nil
		}
		now := time.Now()
		l.resumeAccept(now)
		if now.Sub(lastSweep) >= 100*time.Millisecond {
			l.sweep(now)
			lastSweep = now
		}
		y.maybe(now)
	}
}

// shutdown cuts every connection still open and closes the listener and
// the loop's descriptors as the loop returns.
func (l *tcpLoop) shutdown() {
	for _, c := range l.conns {
		l.closeConn(c, metrics.CloseShutdown)
	}
	_ = l.t.ln.Close()
	l.closeFDs()
}

// poll waits for events (briefly while something is pending: accepts paused,
// a drain, connections waiting for memory) and answers them.
func (l *tcpLoop) poll() error {
	timeout := 250
	if !l.acceptPaused.IsZero() || l.draining || len(l.starved) > 0 {
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
	return nil
}

// stopStep moves a stop along and tells whether the loop is done: at once
// on a hard stop (shutdown cuts every connection); when graceful, once the
// last connection has answered what its client had sent when the stop came
// (no new connections, no more reading) and closed, or is cut at Close.
func (l *tcpLoop) stopStep() bool {
	if l.hard.Load() {
		return true
	}
	if !l.draining {
		l.draining = true
		if l.acceptPaused.IsZero() {
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.lnfd, nil)
		}
		l.acceptPaused = time.Time{}
		_ = l.t.ln.Close()
		for _, c := range l.conns {
			l.setFence(c)
		}
	}
	l.drainStep(time.Now())
	return len(l.conns) == 0
}

// resumeAccept puts the listener back into epoll once an accept back-off
// is over (never while draining: the listener is closed then).
func (l *tcpLoop) resumeAccept(now time.Time) {
	if !l.acceptPaused.IsZero() && now.After(l.acceptPaused) && !l.draining {
		l.acceptPaused = time.Time{}
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.lnfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.lnfd)})
	}
}

func (l *tcpLoop) accept() {
	t := l.t
	for i := 0; i < 64; i++ {
		fd, sa, err := unix.Accept4(l.lnfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			if err == unix.EAGAIN || err == unix.ECONNABORTED || err == unix.EINTR {
				return
			}
			// Out of descriptors or memory: the pending connection stays
			// queued and the level-triggered listener would wake us at once,
			// forever. Take it out of epoll for a while (doubling) instead.
			t.acceptFailed(os.NewSyscallError("accept4", err))
			l.acceptBackoff = min(max(2*l.acceptBackoff, acceptBackoffMin), acceptBackoffMax)
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.lnfd, nil)
			l.acceptPaused = time.Now().Add(l.acceptBackoff)
			return
		}
		l.acceptBackoff = 0
		src := sockaddrToAddrPort(sa)
		now := time.Now()
		var victim *loopConn
		t.connsMu.Lock()
		if len(l.conns) >= t.cfg.MaxConns {
			victim = l.idlest(now)
		}
		res := t.admit(src.Addr(), len(l.conns), victim != nil)
		t.connsMu.Unlock()
		if res == admitRefuse {
			_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
			unix.Close(fd)
			continue
		}
		if res == admitEvict {
			_ = unix.SetsockoptLinger(victim.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
			l.closeConn(victim, metrics.CloseEvicted)
		}
		c := &loopConn{fd: fd, src: src, lastMsg: now, lastActive: now, fence: -1, mask: unix.EPOLLIN | unix.EPOLLRDHUP}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: c.mask, Fd: int32(fd)}); err != nil {
			l.closeConn(c, metrics.CloseError)
			continue
		}
		l.conns[fd] = c // never while draining: the listener is closed then
	}
}

// idlest returns the connection to evict for a new one: one that completed
// no message for at least evictIdle and owes its client nothing (no replies
// queued, no messages waiting for room or memory: eviction resets it, which
// would lose them), from the source with the most connections, and of
// those the one idle for the longest. t.connsMu is held.
func (l *tcpLoop) idlest(now time.Time) *loopConn {
	var victim *loopConn
	limit := now.Add(-l.t.evictIdle())
	most := 0
	for _, c := range l.conns {
		if c.lastMsg.After(limit) || len(c.cb.out) > 0 || c.waiting || c.starved || c.lingering {
			continue
		}
		n := l.t.perIP[addrKey(c.src.Addr())]
		if victim == nil || n > most || (n == most && c.lastMsg.Before(victim.lastMsg)) {
			victim, most = c, n
		}
	}
	return victim
}

// serve answers an event on a connection.
func (l *tcpLoop) serve(c *loopConn, events uint32) {
	if c.lingering {
		l.discard(c)
		return
	}
	if reason, done := l.pump(c, events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0); done {
		if reason == metrics.CloseFrameTooLarge {
			l.flushBlocking(c, time.Now().Add(drainRead)) // answer what came before the bad frame
		}
		l.closeConn(c, reason)
		return
	}
	switch {
	case c.eof && len(c.cb.out) == 0 && !c.waiting:
		l.closeConn(c, metrics.CloseEOF)
	case events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 && !l.canRead(c) && len(c.cb.out) == 0:
		// Reset or fully closed while we wait for memory: nothing to answer
		// it on, and level-triggered epoll would report it forever.
		l.closeConn(c, metrics.CloseError)
	default:
		l.updateEvents(c)
	}
}

// pump moves the connection along as far as its limits allow: replies out,
// waiting messages served, new input read and served, a few rounds at most.
func (l *tcpLoop) pump(c *loopConn, readable bool) (reason metrics.CloseReason, done bool) {
	for i := 0; i < 8; i++ {
		if reason, done := l.flush(c); done {
			return reason, true
		}
		progressed := false
		switch {
		case c.waiting:
			if !l.outHasRoom(c) {
				return 0, false // EPOLLOUT brings us back
			}
			if !l.budgetFor(c, false) {
				l.starve(c)
				return 0, false
			}
			c.waiting = false
			if reason, done := l.serveData(c, c.cb.in, c.eof); done {
				return reason, true
			}
			progressed = true
		case readable && l.canRead(c):
			var reason metrics.CloseReason
			var done bool
			progressed, reason, done = l.readOnce(c)
			if done {
				return reason, true
			}
		}
		if !progressed {
			break
		}
	}
	return l.flush(c)
}

// canRead tells whether the connection may take more input now.
func (l *tcpLoop) canRead(c *loopConn) bool {
	return !c.eof && !c.waiting && !c.starved && !c.lingering && c.fence != 0 && l.outHasRoom(c)
}

// outHasRoom tells whether one more message's replies fit in the
// connection's reply queue.
func (l *tcpLoop) outHasRoom(c *loopConn) bool { return len(c.cb.out)+l.t.replyMax <= l.t.outMax }

// budgetFor tells whether the shard's budget has room for what serving (and
// reading, with read) may make the connection keep: its input growing to
// inMax, and replies the kernel does not take at once copied out of wout.
// The loop is the budget's only user, so the check holds until it returns.
func (l *tcpLoop) budgetFor(c *loopConn, read bool) bool {
	need := 0
	if read {
		need += l.t.inMax - cap(c.cb.in)
	}
	if len(c.cb.out) == 0 {
		need += l.t.outMax
	}
	return l.t.mem.free() >= int64(need)
}

func (l *tcpLoop) starve(c *loopConn) {
	if !c.starved {
		c.starved = true
		l.starved = append(l.starved, c)
	}
}

// retryStarved gives the connections that waited for memory another go,
// oldest first.
func (l *tcpLoop) retryStarved() {
	list := l.starved
	l.starved = nil
	for i, c := range list {
		if l.conns[c.fd] != c {
			continue // closed meanwhile
		}
		if !l.budgetFor(c, !c.waiting) {
			for _, r := range list[i:] {
				if l.conns[r.fd] == r {
					l.starved = append(l.starved, r)
				}
			}
			return
		}
		c.starved = false
		l.serve(c, unix.EPOLLIN)
	}
}

// readSize is how much one read may take: what the connection may keep.
func (l *tcpLoop) readSize(c *loopConn) int {
	n := min(len(l.rbuf), l.t.inMax-len(c.cb.in))
	if c.fence > 0 {
		n = min(n, c.fence)
	}
	return n
}

// readOnce reads once and serves what completed; more tells whether the
// read filled its buffer (more may be waiting).
func (l *tcpLoop) readOnce(c *loopConn) (more bool, reason metrics.CloseReason, done bool) {
	size := l.readSize(c)
	if size <= 0 {
		return false, metrics.CloseFrameTooLarge, true // inMax holds any frame the framer accepts
	}
	if !l.budgetFor(c, true) {
		l.starve(c)
		return false, 0, false
	}
	n, err := unix.Read(c.fd, l.rbuf[:size])
	if err == unix.EAGAIN {
		return false, 0, false
	}
	if err != nil {
		return false, metrics.CloseError, true
	}
	c.lastActive = time.Now()
	if c.fence > 0 {
		c.fence -= n
	}
	if n == 0 {
		c.eof = true
		if len(c.cb.in) > 0 { // the last message may end with the stream
			reason, done := l.serveData(c, c.cb.in, true)
			return false, reason, done
		}
		return false, 0, false
	}
	data := l.rbuf[:n]
	if len(c.cb.in) > 0 {
		if !l.keep(c, data) {
			return false, metrics.CloseError, true
		}
		data = c.cb.in
	}
	reason, done = l.serveData(c, data, false)
	return n == size, reason, done
}

// keep appends b to the connection's input, within inMax and the budget
// (which budgetFor checked before the read); false if either has no room,
// which budgetFor rules out: the input is then lost and the connection
// must close.
func (l *tcpLoop) keep(c *loopConn, b []byte) bool {
	if need := len(c.cb.in) + len(b); need > cap(c.cb.in) {
		if need > l.t.inMax || !l.t.setIn(&c.cb, min(max(need, 2*cap(c.cb.in), 512), l.t.inMax)) {
			return false
		}
	}
	c.cb.in = append(c.cb.in, b...)
	return true
}

// serveData serves the complete messages at the start of data (l.rbuf or
// c.cb.in), writes their replies, and keeps the rest of data as input.
func (l *tcpLoop) serveData(c *loopConn, data []byte, eof bool) (reason metrics.CloseReason, done bool) {
	shared := len(c.cb.out) == 0
	if shared {
		c.cb.out = l.wout[:0]
	}
	consumed, msgs, blocked, ferr := l.t.serveBytes(data, c.src, &c.cb, eof)
	now := time.Now()
	if msgs > 0 {
		c.lastMsg, c.answered = now, true
	}
	if shared {
		if reason, done := l.sendShared(c, now); done {
			return reason, true
		}
	}
	if !l.keepRest(c, data[consumed:]) {
		return metrics.CloseError, true
	}
	c.waiting = blocked
	if blocked && l.outHasRoom(c) {
		l.starve(c) // room in the queue, but not in the shard's budget
	}
	if ferr != nil {
		return metrics.CloseFrameTooLarge, true
	}
	return 0, false
}

// sendShared writes the replies serveData built in the loop's wout; what
// the kernel does not take, the connection keeps in a queue of its own
// (budgetFor made sure the budget has room).
func (l *tcpLoop) sendShared(c *loopConn, now time.Time) (reason metrics.CloseReason, done bool) {
	var werr error
	if len(c.cb.out) > 0 {
		c.outSince = now
		_, werr = l.write(c)
	}
	if len(c.cb.out) > 0 {
		if !l.t.mem.reserve(len(c.cb.out)) {
			return metrics.CloseError, true // ruled out by budgetFor: the replies are counted unsent
		}
		own := make([]byte, len(c.cb.out))
		copy(own, c.cb.out)
		c.cb.held += len(own)
		c.cb.out = own
	} else {
		c.cb.out = nil
	}
	if werr != nil {
		return metrics.CloseError, true
	}
	return 0, false
}

// keepRest keeps what serveData did not consume as the connection's input
// (rest is the tail of c.cb.in or of l.rbuf), and gives the input buffer
// back once it is empty; false if it cannot keep it (budgetFor rules that
// out): the connection must close.
func (l *tcpLoop) keepRest(c *loopConn, rest []byte) bool {
	if len(c.cb.in) > 0 { // rest is in c.cb.in
		c.cb.in = c.cb.in[:copy(c.cb.in, rest)]
	} else if len(rest) > 0 && !l.keep(c, rest) {
		return false
	}
	if len(c.cb.in) == 0 && cap(c.cb.in) > 0 {
		l.t.setIn(&c.cb, 0)
	}
	return true
}

// write writes what it can of c.cb.out and accounts for it.
func (l *tcpLoop) write(c *loopConn) (int, error) {
	total := 0
	for len(c.cb.out) > 0 {
		n, err := unix.Write(c.fd, c.cb.out)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			return total, err
		}
		l.t.wrote(&c.cb, n)
		total += n
		c.outSince = time.Now()
		c.lastActive = c.outSince
	}
	return total, nil
}

// flush writes what it can of the connection's own reply queue and gives
// the queue's buffer back once it is empty; EPOLLOUT covers the rest.
func (l *tcpLoop) flush(c *loopConn) (reason metrics.CloseReason, done bool) {
	if len(c.cb.out) == 0 {
		return 0, false
	}
	if _, err := l.write(c); err != nil {
		return metrics.CloseError, true
	}
	if len(c.cb.out) == 0 {
		l.t.mem.release(cap(c.cb.out))
		c.cb.held -= cap(c.cb.out)
		c.cb.out = nil
	}
	return 0, false
}

// updateEvents registers what the connection waits for: requests while it
// may read (or discards while it lingers), writability while replies wait.
// Level-triggered epoll would spin on anything else.
func (l *tcpLoop) updateEvents(c *loopConn) {
	var mask uint32
	if l.canRead(c) || c.lingering {
		mask |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if len(c.cb.out) > 0 {
		mask |= unix.EPOLLOUT
	}
	if mask != c.mask {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: mask, Fd: int32(c.fd)})
		c.mask = mask
	}
}

// setFence marks, when a stop begins, how much the connection still reads:
// what its client had sent by then.
func (l *tcpLoop) setFence(c *loopConn) {
	if c.fence >= 0 {
		return
	}
	n, ok := inq(c.fd)
	if !ok {
		n = 0
	}
	c.fence = n
	l.updateEvents(c)
}

// drainStep, during a graceful stop, ends the connections that have
// answered everything they read up to the fence: FIN, then a short linger
// that reads and discards until the client closes.
func (l *tcpLoop) drainStep(now time.Time) {
	for _, c := range l.conns {
		switch {
		case c.lingering:
			if (now.After(c.lingerEnd) || now.Sub(c.lastActive) >= drainIdle) && !l.stillAcking(c, now) {
				l.closeConn(c, metrics.CloseShutdown)
			}
		case c.fence == 0 && !c.waiting && len(c.cb.out) == 0:
			if c.eof {
				l.closeConn(c, metrics.CloseEOF)
				continue
			}
			if !l.t.graceUntil(!c.answered, c.lastActive, c.lastMsg.Add(l.t.cfg.IdleTimeout)).Before(now) {
				// Read what has arrived since (the loop polls every few ms
				// while draining); FIN once the client is quiet.
				if n, ok := inq(c.fd); ok && n > 0 {
					c.fence = n
					l.updateEvents(c)
				}
				continue
			}
			_ = unix.Shutdown(c.fd, unix.SHUT_WR)
			c.lingering, c.lingerEnd, c.lastActive = true, now.Add(drainLinger), now
			l.updateEvents(c)
		}
	}
}

// stillAcking tells whether a lingering connection's client has replies
// to acknowledge and took some within --write-timeout.
func (l *tcpLoop) stillAcking(c *loopConn, now time.Time) bool {
	q, ok := outq(c.fd)
	if !ok {
		return false
	}
	return c.lingerOut.pending(q, now, l.t.cfg.WriteTimeout)
}

// discard reads and drops what a lingering connection's client still sends.
func (l *tcpLoop) discard(c *loopConn) {
	var n uint64
	defer func() {
		if n > 0 {
			l.t.mu.Lock()
			l.t.counts.DiscardedBytes += n
			l.t.ctr.Publish(&l.t.counts)
			l.t.mu.Unlock()
		}
	}()
	for {
		r, err := unix.Read(c.fd, l.rbuf)
		if err == unix.EAGAIN {
			return
		}
		if r <= 0 || err != nil {
			l.closeConn(c, metrics.CloseShutdown)
			return
		}
		n += uint64(r)
		c.lastActive = time.Now()
	}
}

// sweep closes connections past their idle or write timeout.
func (l *tcpLoop) sweep(now time.Time) {
	for _, c := range l.conns {
		switch {
		case c.lingering:
		case len(c.cb.out) > 0 && now.Sub(c.outSince) > l.t.cfg.WriteTimeout:
			l.closeConn(c, metrics.CloseWriteTimeout)
		case now.Sub(c.lastMsg) > l.t.cfg.IdleTimeout:
			l.closeConn(c, metrics.CloseIdle)
		}
	}
}

// flushBlocking writes the reply queue until it is empty or the deadline passes.
func (l *tcpLoop) flushBlocking(c *loopConn, deadline time.Time) {
	for len(c.cb.out) > 0 && time.Now().Before(deadline) {
		if _, done := l.flush(c); done {
			return
		}
		if len(c.cb.out) > 0 {
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLOUT}}, int(time.Until(deadline)/time.Millisecond)+1)
		}
	}
}

// closeConn closes the connection and counts what it leaves (input that
// was no message, replies never written).
func (l *tcpLoop) closeConn(c *loopConn, reason metrics.CloseReason) {
	if l.conns[c.fd] == c {
		delete(l.conns, c.fd)
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	}
	if reason == metrics.CloseShutdown && l.hard.Load() {
		_ = unix.SetsockoptLinger(c.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
	}
	unix.Close(c.fd)
	t := l.t
	t.release(&c.cb, reason)
	t.connsMu.Lock()
	t.forget(c.src.Addr())
	t.connsMu.Unlock()
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
