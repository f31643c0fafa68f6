package shard

import (
	"errors"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/shardd/shardd/metrics"
)

// What a TCP connection may hold, for both shapes:
//
//   - input: at most inMax bytes (one frame and its header; a raw stream
//     never keeps input, each read is a message);
//   - replies: a message is served only while its replies are sure to fit,
//     so the queue never exceeds MaxConnMemory - inMax; a connection that
//     reaches it stops serving and reading until the client takes replies;
//   - both, for all the connections of a shard, within MaxShardMemory: every
//     buffer is reserved from the shard's budget before it is allocated, and
//     a connection whose reservation fails waits (reads nothing) until some
//     memory comes back or its idle timeout closes it.
//
// Buffers are given back when they empty, so an idle connection holds none
// in the loop shape and one small read buffer in the goroutine shape.

// frameSlack is what a frame may take beyond its message (a length prefix,
// a delimiter, an octet count).
const frameSlack = 16

// repliesPerMsg is how many replies one message may have (the ReplyQueue's slots).
const repliesPerMsg = 16

// replyCap is the largest reply of a TCP shard and replyBytes what one
// message's replies may take together, framing included.
func replyCap(maxFrame int) int   { return max(maxFrame, maxStreamReply) }
func replyBytes(maxFrame int) int { return 2*replyCap(maxFrame) + repliesPerMsg*frameSlack }

// inLimit is the most input a connection keeps: one frame with its header.
func inLimit(maxFrame int) int { return maxFrame + frameSlack }

// MinConnMemory is the smallest Config.MaxConnMemory for a frame limit: one
// frame of input and one message's replies.
func MinConnMemory(maxFrame int) int { return inLimit(maxFrame) + replyBytes(maxFrame) }

// smallBuf is the smallest reply queue a connection allocates; larger ones
// go back when they empty.
const smallBuf = 4 << 10

// readBuf is the input buffer a goroutine-shape connection keeps between
// messages (as before the limits: 16 KiB reads); a long frame or a burst
// grows it up to inMax, and it shrinks back once empty.
const readBuf = 16 << 10

// tcpMem is a shard's budget for its connections' buffers. reserve never
// lets used exceed budget.
type tcpMem struct {
	budget  int64
	used    atomic.Int64
	peak    atomic.Int64 // high-water mark since memory was last given back to the OS
	waiters atomic.Int32
	mu      sync.Mutex
	freed   chan struct{} // closed (and replaced) when memory comes back while someone waits
}

func newTCPMem(budget int) *tcpMem {
	return &tcpMem{budget: int64(budget), freed: make(chan struct{})}
}

func (m *tcpMem) reserve(n int) bool {
	for {
		u := m.used.Load()
		if u+int64(n) > m.budget {
			return false
		}
		if m.used.CompareAndSwap(u, u+int64(n)) {
			if p := m.peak.Load(); u+int64(n) > p {
				m.peak.CompareAndSwap(p, u+int64(n))
			}
			return true
		}
	}
}

func (m *tcpMem) free() int64 { return m.budget - m.used.Load() }

func (m *tcpMem) release(n int) {
	if n == 0 {
		return
	}
	u := m.used.Add(-int64(n))
	if p := m.peak.Load(); p >= giveBackAbove && u <= p/4 && m.peak.CompareAndSwap(p, u) {
		giveBack()
	}
	if m.waiters.Load() > 0 {
		m.mu.Lock()
		close(m.freed)
		m.freed = make(chan struct{})
		m.mu.Unlock()
	}
}

// waitFree waits until memory is given back or the deadline passes
// (goroutine shape). It reports whether memory came back.
func (m *tcpMem) waitFree(deadline time.Time, stop <-chan struct{}) bool {
	select {
	case <-stop:
		stop = nil // already stopping: wait for memory or the deadline only
	default:
	}
	m.waiters.Add(1)
	defer m.waiters.Add(-1)
	m.mu.Lock()
	ch := m.freed
	m.mu.Unlock()
	if m.free() > 0 { // released between the caller's failure and our registration
		return true
	}
	tm := time.NewTimer(time.Until(deadline))
	defer tm.Stop()
	select {
	case <-ch:
		return true
	case <-stop:
		return true
	case <-tm.C:
		return false
	}
}

// giveBackAbove: when a shard's connections held at least this much and
// then gave three quarters of it back (an attack or a burst is over), the
// freed heap is returned to the OS at once instead of by Go's slow
// background scavenger, so RSS comes down after the connections close.
const giveBackAbove = 2 << 20

var lastGiveBack atomic.Int64 // unix nanoseconds; at most one give-back per giveBackEvery

const giveBackEvery = 5 * time.Second

// giveBack runs debug.FreeOSMemory (a full GC) on its own goroutine, at most
// once per giveBackEvery for the whole process; rare by construction.
func giveBack() {
	now := time.Now().UnixNano()
	last := lastGiveBack.Load()
	if now-last < int64(giveBackEvery) || !lastGiveBack.CompareAndSwap(last, now) {
		return
	}
	go debug.FreeOSMemory()
}

// pendReplies is a run of replies in connBuf.out: they end at end and count
// in TxPackets/TxBytes once the kernel took all of them.
type pendReplies struct {
	end         int
	pkts, bytes uint64
}

// maxPend bounds the runs a connection tracks; later runs merge into the last.
const maxPend = 32

// connBuf is what one connection holds, in either shape.
type connBuf struct {
	in   []byte
	out  []byte
	pend []pendReplies
	held int // cap(in) + cap(out), reserved from the shard's budget
}

// setIn replaces the input buffer by one of capacity n holding in's bytes;
// false if the budget has no room (nothing changes then).
func (t *tcpShard) setIn(cb *connBuf, n int) bool {
	if n == cap(cb.in) {
		return true
	}
	if d := n - cap(cb.in); d > 0 && !t.mem.reserve(d) {
		return false
	}
	var nb []byte
	if n > 0 {
		nb = make([]byte, len(cb.in), n)
		copy(nb, cb.in)
	}
	if d := cap(cb.in) - n; d > 0 {
		t.mem.release(d)
	}
	cb.held += n - cap(cb.in)
	cb.in = nb
	return true
}

// outRoom makes room in cb.out for one more message's replies, within the
// connection's and the shard's limits; t.mu is held.
func (t *tcpShard) outRoom(cb *connBuf) bool {
	need := len(cb.out) + t.replyMax
	if need > t.outMax {
		return false
	}
	if cap(cb.out) >= need {
		return true
	}
	n := min(max(2*cap(cb.out), need, smallBuf), t.outMax)
	if !t.mem.reserve(n - cap(cb.out)) {
		return false
	}
	nb := make([]byte, len(cb.out), n)
	copy(nb, cb.out)
	cb.held += n - cap(cb.out)
	cb.out = nb
	return true
}

// wrote accounts for n bytes of cb.out the kernel took: the runs of replies
// it completes count as sent, and out keeps the rest.
func (t *tcpShard) wrote(cb *connBuf, n int) {
	if n <= 0 {
		return
	}
	done := 0
	t.mu.Lock()
	for done < len(cb.pend) && cb.pend[done].end <= n {
		t.counts.TxPackets += cb.pend[done].pkts
		t.counts.TxBytes += cb.pend[done].bytes
		done++
	}
	if done > 0 {
		t.ctr.Publish(&t.counts)
	}
	t.mu.Unlock()
	cb.pend = cb.pend[:copy(cb.pend, cb.pend[done:])]
	for i := range cb.pend {
		cb.pend[i].end -= n
	}
	cb.out = cb.out[:copy(cb.out, cb.out[n:])]
}

// release counts what a closing connection leaves behind (input that was no
// complete message, replies never written) and gives its buffers back.
func (t *tcpShard) release(cb *connBuf, reason metrics.CloseReason) {
	t.mu.Lock()
	t.counts.Closed[reason]++
	t.counts.DiscardedBytes += uint64(len(cb.in))
	for _, p := range cb.pend {
		t.counts.UnsentPackets += p.pkts
		t.counts.UnsentBytes += p.bytes
	}
	t.ctr.Publish(&t.counts)
	t.mu.Unlock()
	t.mem.release(cb.held)
	*cb = connBuf{}
}

// addrKey is the source a per-address limit counts: the address, or its /64
// for IPv6 (one host usually owns a whole /64).
func addrKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// admission is what admit decided about a new connection.
type admission int

const (
	admitOK admission = iota
	admitEvict
	admitRefuse
)

// admit counts an accepted connection from src and decides on it: refused
// over --max-conns-per-ip, or over --max-conns unless a connection idle for
// evictIdle can make room (the caller evicts it). live is the number of
// connections the shard serves; t.connsMu is held.
func (t *tcpShard) admit(src netip.Addr, live int, canEvict bool) admission {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts.Accepted++
	res := admitOK
	var reason metrics.CloseReason // counted when refused
	switch {
	case t.perIP[addrKey(src)] >= t.cfg.MaxConnsPerIP:
		res, reason = admitRefuse, metrics.ClosePerIP
	case live >= t.cfg.MaxConns && canEvict:
		res = admitEvict
	case live >= t.cfg.MaxConns:
		res, reason = admitRefuse, metrics.CloseLimit
	}
	if res == admitRefuse {
		t.counts.Closed[reason]++
	} else {
		t.perIP[addrKey(src)]++
	}
	t.ctr.Publish(&t.counts)
	return res
}

// forget undoes admit's per-address count; t.connsMu is held.
func (t *tcpShard) forget(src netip.Addr) {
	k := addrKey(src)
	if t.perIP[k] <= 1 {
		delete(t.perIP, k)
		return
	}
	t.perIP[k]--
}

// evictIdle is how long a connection must have completed no message before
// a new one may take its place on a full shard.
func (t *tcpShard) evictIdle() time.Duration { return min(time.Second, t.cfg.IdleTimeout) }

// acceptFailed counts a failed accept by errno and logs the first of each kind.
func (t *tcpShard) acceptFailed(err error) {
	kind := metrics.AcceptOther
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EMFILE:
			kind = metrics.AcceptEMFILE
		case syscall.ENFILE:
			kind = metrics.AcceptENFILE
		case syscall.ENOBUFS:
			kind = metrics.AcceptENOBUFS
		case syscall.ENOMEM:
			kind = metrics.AcceptENOMEM
		}
	}
	t.mu.Lock()
	t.counts.AcceptErrors[kind]++
	first := t.counts.AcceptErrors[kind] == 1
	t.ctr.Publish(&t.counts)
	t.mu.Unlock()
	if first {
		t.log.Warn("accept failed; backing off and retrying (logged once per kind, counted in shardd_tcp_accept_errors_total)",
			zap.Stringer("errno", kind), zap.Error(err))
	}
}

// Accept back-off after a failure (out of descriptors: the pending
// connection stays queued, so retrying at once would spin).
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = 200 * time.Millisecond
)

// drainLinger is, during a graceful stop, how long a connection that has
// been answered waits for its client to close after our FIN, reading and
// discarding what the client still sends, so the close does not reset
// replies the client has not read yet. A connection whose replies the
// client has not yet acknowledged (SIOCOUTQ) lingers on until they are,
// or until the stop's deadline cuts it.
const drainLinger = 500 * time.Millisecond

// unacked tells whether fd still has reply bytes the client did not acknowledge.
func unacked(fd int) bool {
	n, ok := outq(fd)
	return ok && n > 0
}
