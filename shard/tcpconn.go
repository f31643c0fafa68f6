package shard

import (
	"errors"
	"net/netip"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/metrics/fdlimit"
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
			return true
		}
	}
}

func (m *tcpMem) free() int64 { return m.budget - m.used.Load() }

func (m *tcpMem) release(n int) {
	if n == 0 {
		return
	}
	m.used.Add(-int64(n))
	if m.waiters.Load() > 0 {
		m.mu.Lock()
		close(m.freed)
		m.freed = make(chan struct{})
		m.mu.Unlock()
	}
}

// waitFree waits until the budget has need bytes free, the deadline passes
// or (unless it is already stopping) the shard stops (goroutine shape). It
// reports whether the caller should try again: memory came back or the
// shard stopped; false means the deadline passed. A release that frees less
// than need wakes it, and it waits again: it never returns to a caller whose
// reservation is bound to fail (that would spin).
func (m *tcpMem) waitFree(need int, deadline time.Time, stop <-chan struct{}) bool {
	select {
	case <-stop:
		stop = nil // already stopping: wait for memory or the deadline only
	default:
	}
	if m.free() >= int64(need) {
		return true
	}
	m.waiters.Add(1)
	defer m.waiters.Add(-1)
	tm := time.NewTimer(time.Until(deadline))
	defer tm.Stop()
	for {
		m.mu.Lock()
		ch := m.freed
		m.mu.Unlock()
		if m.free() >= int64(need) { // released between the check and our registration
			return true
		}
		select {
		case <-ch:
		case <-stop:
			return true
		case <-tm.C:
			return false
		}
	}
}

// pendReplies is a run of replies in connBuf.out: they end at end and count
// in TxPackets/TxBytes once the kernel took all of them.
type pendReplies struct {
	end         int
	pkts, bytes uint64
}

// maxPend bounds the runs a connection tracks; later runs merge into the last.
const maxPend = 32

// addRun records a run of replies in out (none if it has no packets); past
// maxPend runs it merges into the last.
func (cb *connBuf) addRun(r pendReplies) {
	if r.pkts == 0 {
		return
	}
	if n := len(cb.pend); n < maxPend {
		cb.pend = append(cb.pend, r)
	} else {
		last := &cb.pend[n-1]
		last.end = r.end
		last.pkts += r.pkts
		last.bytes += r.bytes
	}
}

// connBuf is what one connection holds, in either shape.
type connBuf struct {
	in   []byte
	out  []byte
	pend []pendReplies
	held int    // reserved from the shard's budget: cap(in), plus cap(out) when out is the connection's own (not the loop's shared wout)
	peer []byte // the TLS client certificate's subject (packet.Packet.Peer), nil without one
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

// outSize is the capacity outRoom grows cb.out to for one more message's
// replies; cap(cb.out) if it has room already.
func (t *tcpShard) outSize(cb *connBuf) int {
	need := len(cb.out) + t.replyMax
	if cap(cb.out) >= need {
		return cap(cb.out)
	}
	return min(max(2*cap(cb.out), need, smallBuf), t.outMax)
}

// outNeed is what outRoom would reserve from the shard's budget.
func (t *tcpShard) outNeed(cb *connBuf) int { return t.outSize(cb) - cap(cb.out) }

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
	n := t.outSize(cb)
	if !t.mem.reserve(n - cap(cb.out)) {
		return false
	}
	var nb []byte
	if k := len(t.outFree); cap(cb.out) == 0 && n == t.replyMax && k > 0 {
		nb, t.outFree = t.outFree[k-1], t.outFree[:k-1]
	}
	if nb == nil {
		nb = make([]byte, len(cb.out), n)
	}
	nb = nb[:len(cb.out)]
	copy(nb, cb.out)
	cb.held += n - cap(cb.out)
	cb.out = nb
	return true
}

// outFreeMax bounds the reply buffers a goroutine-shape shard keeps for
// reuse (outside the budget: at most outFreeMax x replyMax, ~512 KiB).
const outFreeMax = 4

// dropOut gives an empty reply buffer back to the budget (goroutine shape:
// replies are written out whole after each round); first-size buffers are
// kept (outFreeMax at most) for the next round.
func (t *tcpShard) dropOut(cb *connBuf) {
	if cap(cb.out) == 0 || len(cb.out) > 0 {
		return
	}
	n := cap(cb.out)
	if n == t.replyMax {
		t.mu.Lock()
		if len(t.outFree) < outFreeMax {
			t.outFree = append(t.outFree, cb.out[:0])
		}
		t.mu.Unlock()
	}
	cb.out = nil
	cb.held -= n
	t.mem.release(n)
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
// when the shard is full (--max-conns) and no connection can be evicted
// ("limit"), else refused over --max-conns-per-ip, else admitted, evicting
// a connection on a full shard (the caller evicts it). live is the number of
// connections the shard serves; t.connsMu is held.
func (t *tcpShard) admit(src netip.Addr, live int, canEvict bool) admission {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts.Accepted++
	res := admitOK
	var reason metrics.CloseReason // counted when refused
	switch {
	case live >= t.cfg.MaxConns && !canEvict: // full, whoever asks
		res, reason = admitRefuse, metrics.CloseLimit
	case t.perIP[addrKey(src)] >= t.cfg.MaxConnsPerIP:
		res, reason = admitRefuse, metrics.ClosePerIP
	case live >= t.cfg.MaxConns:
		res = admitEvict
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

// acceptFailed counts a failed accept by errno and logs the first of each
// kind in an episode (failures less than acceptEpisodeGap apart).
func (t *tcpShard) acceptFailed(err error) {
	kind := metrics.AcceptOther
	var errno syscall.Errno
	switch {
	case fdlimit.Errno(err) == syscall.EMFILE: // one classification of descriptor exhaustion for all of shardd
		kind = metrics.AcceptEMFILE
	case fdlimit.Errno(err) == syscall.ENFILE:
		kind = metrics.AcceptENFILE
	case errors.As(err, &errno) && errno == syscall.ENOBUFS:
		kind = metrics.AcceptENOBUFS
	case errors.As(err, &errno) && errno == syscall.ENOMEM:
		kind = metrics.AcceptENOMEM
	}
	now := time.Now()
	t.mu.Lock()
	t.counts.AcceptErrors[kind]++
	if now.Sub(t.acceptLastFail) > acceptEpisodeGap {
		t.acceptLogged = [metrics.AcceptErrnos]bool{} // a new episode
	}
	t.acceptLastFail = now
	first := !t.acceptLogged[kind]
	t.acceptLogged[kind] = true
	t.ctr.Publish(&t.counts)
	t.mu.Unlock()
	if first {
		t.log.Warn("accept failed; backing off and retrying (logged once per kind, counted in shardd_tcp_accept_errors_total)",
			zap.Stringer("errno", kind), zap.Error(err))
	}
}

// acceptEpisodeGap: failed accepts further apart than this are separate
// episodes, each logged again (once per kind).
const acceptEpisodeGap = time.Minute

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
// client has not yet acknowledged (SIOCOUTQ) lingers on while the client
// keeps taking them (the queue went down within --write-timeout): a client
// that never reads cannot hold a stop until --drain-timeout.
const drainLinger = 500 * time.Millisecond

// Freed connection buffers go back to the OS through Go's background
// scavenger, which is slow after a burst: a process-wide sweeper looks every
// returnEvery at the heap that is free but still held from the OS, and
// returns it (debug.FreeOSMemory, a full GC) only when that is over
// returnAbove. Clients cannot make it run more often than that: it is not
// triggered by connections closing, and it costs at most one GC per
// returnEvery.
const (
	returnEvery = 30 * time.Second
	returnAbove = 4 << 20
)

var startReturner sync.Once

func returnFreedMemory() {
	startReturner.Do(func() {
		go func() {
			sample := []runtimemetrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
			for range time.Tick(returnEvery) {
				runtimemetrics.Read(sample)
				if sample[0].Value.Kind() == runtimemetrics.KindUint64 && sample[0].Value.Uint64() > returnAbove {
					debug.FreeOSMemory()
				}
			}
		}()
	})
}
