package shard

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/packet"
)

// tcpShard is one shard's TCP listener and the connections it accepted.
// Every connection has its own goroutine on Go's netpoller; the shard's
// handler, reply writer and counters are shared by them under mu, so handler
// state stays race-free and a connection's messages count on the shard that
// accepted it for its whole life.
type tcpShard struct {
	id       int
	cpu      int       // -1: not pinned (event-loop shape only)
	inode    uint64    // the listener's inode
	loop     tcpRunner // non-nil: the event-loop shape
	ln       *net.TCPListener
	cfg      *resolved
	framer   packet.Framer // nil: raw stream
	log      *zap.Logger
	stopping atomic.Bool
	stopCh   chan struct{} // closed when stopping
	stopAt   atomic.Int64  // unix nanoseconds when the graceful stop began

	mem      *tcpMem // what the connections hold, against --max-shard-memory
	inMax    int     // input a connection keeps at most (raw: one read)
	outMax   int     // replies a connection queues at most
	replyMax int     // what one message's replies may take

	mu             sync.Mutex                 // guards handler, replies, pkt, counts, panicked
	panicked       bool                       // a handler panic was logged once already
	acceptLogged   [metrics.AcceptErrnos]bool // an accept failure of this kind was logged in this episode
	acceptLastFail time.Time                  // the last failed accept (an episode ends acceptEpisodeGap after it)
	handler        packet.Handler
	pub            packet.Publisher // the handler, if it publishes counters per batch
	replies        *packet.ReplyQueue
	pkt            packet.Packet
	counts         metrics.Counts
	outFree        [][]byte // goroutine shape: up to outFreeMax empty reply buffers of replyMax bytes for the next round
	ctr            metrics.Shard

	connsMu  sync.Mutex // guards conns, evicting, perIP
	conns    map[*net.TCPConn]*connState
	evicting int                // connections closed to make room whose goroutines have not yet removed them
	perIP    map[netip.Addr]int // open connections by source (addrKey)
	wg       sync.WaitGroup
}

// connState is what the accept loop knows of a goroutine-shape connection.
type connState struct {
	c       *net.TCPConn
	rw      net.Conn // what frames are read from and replies written to: c, or its TLS session
	src     netip.AddrPort
	lastMsg atomic.Int64 // unix nanoseconds of the last complete message (or the accept)
	evicted bool         // under connsMu: closed to make room for a new connection
	fresh   bool         // no message completed yet (its goroutine only)
	busy    atomic.Bool  // serving, writing replies or waiting for memory: not to be evicted
	// In its TLS handshake: a stop gives it tlsStopGrace to finish, so a
	// connection accepted just before an upgrade's hand-over is served.
	handshaking atomic.Bool
}

// maxStreamReply is the smallest reply size a TCP shard allows: a 2-byte
// length-prefixed frame's largest message.
const maxStreamReply = 65535

func newTCPShard(id int, cfg *resolved, ln *net.TCPListener, h packet.Handler) *tcpShard {
	t := &tcpShard{
		id: id, cpu: -1, ln: ln, cfg: cfg, handler: h,
		log: cfg.Logger.With(zap.Int("shard", id), zap.String("proto", "tcp")),
		// One message's replies at a time. --max-frame limits what clients
		// send; a reply may still take a whole 64 KiB frame (a DNS answer to
		// a small query), so it never gets less.
		replies: packet.NewReplyQueue(repliesPerMsg, 2*replyCap(cfg.MaxFrame), replyCap(cfg.MaxFrame)),
		conns:   map[*net.TCPConn]*connState{},
		perIP:   map[netip.Addr]int{},
		stopCh:  make(chan struct{}),
		mem:     newTCPMem(cfg.MaxShardMemory),
	}
	t.framer, _ = h.(packet.Framer)
	t.pub, _ = h.(packet.Publisher)
	t.inMax = inLimit(cfg.MaxFrame)
	if t.framer == nil {
		t.inMax = cfg.MaxFrame // a raw stream: each read is one message
	}
	t.replyMax = replyBytes(cfg.MaxFrame)
	t.outMax = cfg.MaxConnMemory - t.inMax
	t.pkt.Proto = packet.TCP
	t.pkt.Shard = id
	return t
}

// tcpRunner is the event-loop shape's side of a tcpShard (Linux).
type tcpRunner interface {
	run() error
	wake()
	hardStop()
	closeIdle()
}

// run serves the shard: the event loop, or an accept loop that starts a
// goroutine per connection and waits for them when the listener closes.
func (t *tcpShard) run() error {
	returnFreedMemory()
	if t.loop != nil {
		return t.loop.run()
	}
	defer t.wg.Wait()
	var backoff time.Duration
	for {
		c, err := t.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			backoff = t.acceptWait(err, backoff)
			continue
		}
		backoff = 0
		if st := t.register(c); st != nil {
			t.wg.Add(1)
			go t.serveConn(st)
		}
	}
}

// acceptWait counts a failed accept and waits before the next one. EMFILE
// and friends leave the connection queued, so it backs off (doubling from
// backoff, which it returns); a stop cuts the wait short.
func (t *tcpShard) acceptWait(err error, backoff time.Duration) time.Duration {
	t.acceptFailed(err)
	backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
	select {
	case <-time.After(backoff):
	case <-t.stopCh:
	}
	return backoff
}

// register admits an accepted connection (evicting an idle one on a full
// shard) and returns its state, or refuses it, closing it at once, and
// returns nil.
func (t *tcpShard) register(c *net.TCPConn) *connState {
	src := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	st := &connState{c: c, rw: c, src: netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), fresh: true}
	now := time.Now()
	st.lastMsg.Store(now.UnixNano())
	st.handshaking.Store(t.cfg.TLS != nil)
	// stop sets stopping before it walks conns under connsMu, so a
	// connection registered here either gets stop's deadline or sees
	// stopping itself (drained).
	t.connsMu.Lock()
	live := len(t.conns) - t.evicting
	var victim *connState
	if live >= t.cfg.MaxConns {
		victim = t.idlest(now)
	}
	switch t.admit(st.src.Addr(), live, victim != nil) {
	case admitRefuse:
		t.connsMu.Unlock()
		_ = c.SetLinger(0) // refuse at once, no TIME_WAIT on our side
		_ = c.Close()
		return nil
	case admitEvict:
		victim.evicted = true
		t.evicting++
		_ = victim.c.SetLinger(0)
		_ = victim.c.Close() // its goroutine counts it as evicted
	}
	t.conns[c] = st
	t.connsMu.Unlock()
	return st
}

// idlest returns the connection to evict for a new one: one that completed
// no message for at least evictIdle and owes its client nothing (not
// serving, writing replies or waiting for memory: eviction resets it, which
// would lose them), from the source with the most connections, and of
// those the one idle for the longest; t.connsMu is held.
func (t *tcpShard) idlest(now time.Time) *connState {
	var victim *connState
	limit := now.Add(-t.evictIdle()).UnixNano()
	most, oldest := 0, int64(0)
	for _, st := range t.conns {
		last := st.lastMsg.Load()
		if st.evicted || st.busy.Load() || last > limit {
			continue
		}
		n := t.perIP[addrKey(st.src.Addr())]
		if victim == nil || n > most || (n == most && last < oldest) {
			victim, most, oldest = st, n, last
		}
	}
	return victim
}

// serveConn reads, frames, serves and answers one connection. Its input
// buffer holds at most inMax bytes, and replies go to a buffer borrowed per
// round (outMax bytes, reserved from the shard's budget) that is written
// out whole before more input is served.
func (t *tcpShard) serveConn(st *connState) {
	defer t.wg.Done()
	var cb connBuf
	reason := metrics.CloseError // if converse panics
	defer func() { t.endConn(st, &cb, reason) }()
	if t.cfg.TLS != nil {
		var ok bool
		if reason, ok = t.handshake(st, &cb); !ok {
			return
		}
	}
	reason = t.converse(st, &cb)
}

// endConn forgets a closed connection and counts why it closed (evicted,
// whatever its goroutine saw) and what it left.
func (t *tcpShard) endConn(st *connState, cb *connBuf, reason metrics.CloseReason) {
	t.connsMu.Lock()
	delete(t.conns, st.c)
	t.forget(st.src.Addr())
	if st.evicted {
		t.evicting--
		reason = metrics.CloseEvicted
	}
	t.connsMu.Unlock()
	_ = st.c.Close()
	t.release(cb, reason)
}

// streamState is where a goroutine-shape connection's reading stands.
type streamState struct {
	// A message must complete by deadline, the idle timeout after the
	// previous one: bytes that do not finish a frame, and frames that carry
	// no message, do not extend it (slow and idle clients).
	deadline time.Time
	fence    int       // stopping: bytes the client had sent when the stop came, still to read; -1 before
	eof      bool      // the client has sent everything
	grow     bool      // the last read filled its room: a long frame or a burst
	lastRead time.Time // when the last byte came
	start    time.Time // when serving began (after a TLS handshake)
	peeked   bool      // TLS, stopping: one read was tried for records crypto/tls already holds
}

// converse runs a connection's rounds until it closes, and returns why:
// serve what is complete, then (stopping) end once that is all the client
// had sent, else size the input buffer and read.
func (t *tcpShard) converse(st *connState, cb *connBuf) metrics.CloseReason {
	now := time.Now()
	s := streamState{deadline: now.Add(t.cfg.IdleTimeout), fence: -1, lastRead: now, start: now}
	for {
		if reason, ok := t.serveReady(st, cb, &s); !ok {
			return reason
		}
		if s.eof {
			return metrics.CloseEOF
		}
		if t.drained(st, cb, &s) {
			return metrics.CloseShutdown
		}
		room, reason, ok := t.sizeIn(cb, &s)
		if !ok {
			return reason
		}
		room, ok = t.armRead(st, &s, room)
		if !ok {
			continue // stop's deadline may have come before ours
		}
		if reason, done := t.readIn(st.rw, cb, &s, room); done {
			return reason
		}
	}
}

// serveReady serves the complete messages cb.in holds (and, at EOF, what
// is left), a round of replies at a time; ok false closes the connection
// for reason.
func (t *tcpShard) serveReady(st *connState, cb *connBuf, s *streamState) (reason metrics.CloseReason, ok bool) {
	for len(cb.in) > 0 && (s.eof || t.complete(cb.in)) {
		if reason, ok := t.serveInput(st, cb, s.eof, &s.deadline); !ok {
			return reason, false
		}
		// Another round only while complete messages are left (more than
		// one round's replies could take).
		if len(cb.in) == 0 || !t.complete(cb.in) {
			break
		}
	}
	return 0, true
}

// drained tells, once the shard is stopping, whether the connection is
// done: it fences its input at what the client had sent when the stop came
// (it reads no more), and once that is answered and no grace is left
// (graceUntil) it lingers (FIN, discard) and is to close.
func (t *tcpShard) drained(st *connState, cb *connBuf, s *streamState) bool {
	if t.stopping.Load() && s.fence < 0 {
		s.fence = connInq(st.c)
	}
	if s.fence == 0 && t.streamGrace(st, s).Before(time.Now()) && !tlsPeek(st, s) {
		t.linger(st, cb)
		return true
	}
	return false
}

// connInq is what the client has sent that c has not read yet (SIOCINQ);
// 0 if unknown.
func connInq(c *net.TCPConn) int {
	n := 0
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { n, _ = inq(int(fd)) })
	}
	return n
}

// inWant is the input buffer's next size: small between messages, larger
// for a long frame or a burst (grow: the last read filled its room), never
// over inMax nor under what it holds.
func (t *tcpShard) inWant(cb *connBuf, grow bool) int {
	want := max(cap(cb.in), readBuf)
	if grow || len(cb.in) > cap(cb.in)/2 {
		want = 2 * cap(cb.in)
	}
	if len(cb.in) == 0 && !grow {
		want = readBuf
	}
	want = min(max(want, len(cb.in)+1), t.inMax)
	return max(want, len(cb.in))
}

// sizeIn sizes the input buffer for the next read (inWant), waiting for
// the shard's budget when it has no room, and returns the room left in it;
// ok false closes the connection for reason.
func (t *tcpShard) sizeIn(cb *connBuf, s *streamState) (room int, reason metrics.CloseReason, ok bool) {
	want := t.inWant(cb, s.grow)
	for !t.setIn(cb, want) {
		if !t.mem.waitFree(want-cap(cb.in), t.waitUntil(s.deadline), t.stopCh) {
			return 0, t.waitedOut(), false
		}
	}
	room = cap(cb.in) - len(cb.in)
	if room == 0 {
		return 0, metrics.CloseFrameTooLarge, false // inMax holds any frame the framer accepts
	}
	return room, 0, true
}

// armRead sets the read deadline for the next read and bounds its room:
// while stopping, up to the fence, quickly (drainIdle), or, fenced, only a
// request still on its way (graceUntil); else the idle deadline. ok false:
// the shard began stopping meanwhile, go round again.
func (t *tcpShard) armRead(st *connState, s *streamState, room int) (int, bool) {
	switch {
	case s.fence > 0:
		_ = st.rw.SetReadDeadline(time.Now().Add(drainIdle))
		return min(room, s.fence), true
	case s.fence == 0: // a request in flight: until it stops arriving, within the grace
		_ = st.rw.SetReadDeadline(t.streamGrace(st, s))
		return room, true
	}
	_ = st.rw.SetReadDeadline(s.deadline)
	return room, !t.stopping.Load()
}

// readIn reads once into cb.in, at most room bytes; done closes the
// connection for reason. EOF is kept in s (what is left is served, then it
// closes); a deadline ends the fence, or, not stopping, the connection.
func (t *tcpShard) readIn(c net.Conn, cb *connBuf, s *streamState, room int) (reason metrics.CloseReason, done bool) {
	n, err := c.Read(cb.in[len(cb.in) : len(cb.in)+room])
	cb.in = cb.in[:len(cb.in)+n]
	s.grow = n == room
	if s.fence > 0 {
		s.fence -= n
	}
	if n > 0 {
		s.lastRead = time.Now()
	}
	switch {
	case err == io.EOF:
		s.eof = true // serve the rest with eof (FinalFramer), then close
	case errors.Is(err, os.ErrDeadlineExceeded):
		if s.fence > 0 {
			s.fence = 0
		} else if !t.stopping.Load() {
			return metrics.CloseIdle, true
		}
	case err != nil:
		return metrics.CloseError, true
	}
	return 0, false
}

// waitUntil bounds a wait for memory: the idle deadline, or a short one
// once the shard is stopping.
func (t *tcpShard) waitUntil(deadline time.Time) time.Time {
	if t.stopping.Load() {
		return time.Now().Add(drainIdle)
	}
	return deadline
}

// waitedOut is why a connection that waited for memory in vain closes.
func (t *tcpShard) waitedOut() metrics.CloseReason {
	if t.stopping.Load() {
		return metrics.CloseShutdown
	}
	return metrics.CloseIdle
}

// complete tells whether buf starts with a complete message (or a frame
// error, which closes the connection).
func (t *tcpShard) complete(buf []byte) bool {
	adv, _, err := t.nextFrame(buf)
	return adv > 0 || err != nil
}

// nextFrame is the framer's Frame; a raw stream's message is all of buf.
func (t *tcpShard) nextFrame(buf []byte) (adv int, msg []byte, err error) {
	if t.framer == nil {
		return len(buf), buf, nil
	}
	return t.framer.Frame(buf, t.cfg.MaxFrame)
}

// serveInput serves what cb.in holds and writes the replies (goroutine
// shape). The reply buffer grows per message within the connection's and
// the shard's limits (outRoom, as in the loop shape), is written out whole,
// and goes back to the budget before more input is read; when the budget
// has no room for one message's replies it waits for memory. ok false
// closes the connection for reason.
func (t *tcpShard) serveInput(st *connState, cb *connBuf, eof bool, deadline *time.Time) (reason metrics.CloseReason, ok bool) {
	st.busy.Store(true)
	defer st.busy.Store(false)
	defer t.dropOut(cb)
	for {
		consumed, msgs, blocked, ferr := t.serveBytes(cb.in, st.src, cb, eof)
		cb.in = cb.in[:copy(cb.in, cb.in[consumed:])]
		if msgs > 0 {
			now := time.Now()
			*deadline = now.Add(t.cfg.IdleTimeout)
			st.lastMsg.Store(now.UnixNano())
			st.fresh = false
		}
		if reason, ok := t.writeOut(st.rw, cb); !ok {
			return reason, false
		}
		if ferr != nil {
			return metrics.CloseFrameTooLarge, false
		}
		if !blocked || msgs > 0 {
			break // served what it could; the caller serves the rest in the next round
		}
		// Nothing served: the shard's budget has no room for one
		// message's replies. Wait until it has.
		t.dropOut(cb)
		if !t.mem.waitFree(t.outNeed(cb), t.waitUntil(*deadline), t.stopCh) {
			return t.waitedOut(), false
		}
	}
	if len(cb.in) == 0 && cap(cb.in) > readBuf {
		t.setIn(cb, 0) // a burst is over: give its buffer back
	}
	return 0, true
}

// writeOut writes a round's replies out whole, within --write-timeout;
// ok false closes the connection for reason.
func (t *tcpShard) writeOut(c net.Conn, cb *connBuf) (reason metrics.CloseReason, ok bool) {
	if len(cb.out) == 0 {
		return 0, true
	}
	_ = c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
	n, err := c.Write(cb.out)
	t.wrote(cb, n)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, os.ErrDeadlineExceeded):
		return metrics.CloseWriteTimeout, false
	}
	return metrics.CloseError, false
}

// linger ends a connection during a graceful stop once everything read is
// answered: FIN after the replies, then what the client still sends is read
// and discarded until it closes (or drainLinger), so the close does not
// reset replies it has not read yet. While the client has not acknowledged
// every reply (SIOCOUTQ) it lingers on, but only as long as it keeps taking
// them: once the queue has not gone down for --write-timeout, it closes
// (the kernel already took those replies, counted as sent; it still tries
// to deliver them after the close). A TLS connection sends its close_notify
// first; what its client still sends is discarded undecrypted.
func (t *tcpShard) linger(st *connState, cb *connBuf) {
	c := st.c
	t.closeWrite(st)
	var scratch [4096]byte
	var discarded uint64
	end := time.Now().Add(drainLinger)
	rc, rcErr := c.SyscallConn()
	var prog outProgress
	pending := func() bool { // replies not yet acknowledged, and still going out
		q := 0
		if rcErr == nil {
			_ = rc.Control(func(fd uintptr) { q, _ = outq(int(fd)) })
		}
		return prog.pending(q, time.Now(), t.cfg.WriteTimeout)
	}
	for {
		d := time.Now().Add(drainIdle)
		if d.After(end) && !pending() {
			d = end
		}
		_ = c.SetReadDeadline(d)
		n, err := c.Read(scratch[:])
		discarded += uint64(n)
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && pending() {
			continue
		}
		break
	}
	if discarded > 0 {
		t.mu.Lock()
		t.counts.DiscardedBytes += discarded
		t.ctr.Publish(&t.counts)
		t.mu.Unlock()
	}
}

// outProgress follows a lingering connection's unacknowledged replies.
type outProgress struct {
	last  int       // SIOCOUTQ at the last look
	since time.Time // when it last went down (or was first seen)
}

// pending tells whether a lingering connection should wait on for the
// client to acknowledge q bytes: some are unacknowledged and the queue went
// down within writeTimeout.
func (p *outProgress) pending(q int, now time.Time, writeTimeout time.Duration) bool {
	if q <= 0 {
		return false
	}
	if p.since.IsZero() || q < p.last {
		p.since = now
	}
	p.last = q
	return now.Sub(p.since) < writeTimeout
}

// serveBytes hands complete messages in buf to the handler, appending their
// framed replies to cb.out, for as long as cb.out has room for one more
// message's replies (outRoom); blocked says it stopped for lack of room with
// complete messages left. It returns how many bytes were consumed and how
// many messages served. eof says the client has sent everything: a framer
// that is a packet.FinalFramer then gets the bytes left after the last
// frame. A frame that carries no message is consumed, counted in
// EmptyFrames and not served. Counters are published before it returns, so before any
// reply is written.
func (t *tcpShard) serveBytes(buf []byte, src netip.AddrPort, cb *connBuf, eof bool) (consumed, msgs int, blocked bool, ferr error) {
	if len(buf) == 0 {
		return 0, 0, false, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var run pendReplies
	consumed, msgs, blocked, ferr = t.serveFrames(buf, src, cb, &run)
	// At EOF what is left may still be the last message (packet.FinalFramer).
	if eof && ferr == nil && !blocked && consumed < len(buf) {
		if msg, ok := t.finalFrame(buf[consumed:]); ok {
			if t.outRoom(cb) {
				consumed = len(buf)
				msgs++
				t.serveOne(msg, src, cb, &run)
			} else {
				blocked = true
			}
		}
	}
	run.end = len(cb.out)
	cb.addRun(run)
	if t.pub != nil {
		t.pub.Publish()
	}
	t.ctr.Publish(&t.counts)
	return consumed, msgs, blocked, ferr
}

// serveFrames is serveBytes up to the last complete frame, adding the
// replies to run; t.mu is held.
func (t *tcpShard) serveFrames(buf []byte, src netip.AddrPort, cb *connBuf, run *pendReplies) (consumed, msgs int, blocked bool, ferr error) {
	for consumed < len(buf) {
		adv, msg, err := t.nextFrame(buf[consumed:])
		if err != nil {
			return consumed, msgs, false, err
		}
		if adv == 0 {
			break
		}
		if len(msg) == 0 {
			consumed += adv
			t.counts.EmptyFrames++
			continue
		}
		if !t.outRoom(cb) {
			return consumed, msgs, true, nil
		}
		consumed += adv
		msgs++
		t.serveOne(msg, src, cb, run)
	}
	return consumed, msgs, false, nil
}

// finalFrame is the last message in what is left at EOF, if the framer
// takes one there (packet.FinalFramer).
func (t *tcpShard) finalFrame(rest []byte) ([]byte, bool) {
	if ff, ok := t.framer.(packet.FinalFramer); ok {
		return ff.FinalFrame(rest)
	}
	return nil, false
}

// serveOne runs the handler on one message and appends its replies to
// cb.out, adding them to run; t.mu is held.
func (t *tcpShard) serveOne(msg []byte, src netip.AddrPort, cb *connBuf, run *pendReplies) {
	t.counts.RxPackets++
	t.counts.RxBytes += uint64(len(msg))
	t.pkt.Data, t.pkt.Src, t.pkt.Peer = msg, src, cb.peer
	t.replies.Reset()
	w := t.replies.Begin(&t.pkt)
	defer func() {
		if r := recover(); r != nil {
			t.counts.HandlerErrors++
			if !t.panicked { // once, as the UDP shard does: a client must not flood the log
				t.panicked = true
				t.log.Error("handler panicked on a TCP message; it was dropped and counted (further panics only in shardd_handler_errors_total)", zap.Any("panic", r))
			}
		}
	}()
	if err := t.handler.ServePacket(w, &t.pkt); err != nil {
		t.counts.HandlerErrors++
	}
	for _, r := range t.replies.Replies() {
		if t.framer != nil {
			cb.out = t.framer.AppendFrame(cb.out, r.Data)
		} else {
			cb.out = append(cb.out, r.Data...)
		}
		run.pkts++
		run.bytes += uint64(len(r.Data))
	}
}

// stop closes the listener (no new connections) and tells every connection
// to finish: what it has read is served, then it closes. After the drain
// deadline, connections still open are cut.
func (t *tcpShard) stop() {
	t.stopAt.CompareAndSwap(0, time.Now().UnixNano()) // before stopping: a connection that sees stopping sees it
	if t.stopping.Swap(true) {
		return
	}
	close(t.stopCh)
	if t.loop != nil {
		t.loop.wake() // the loop closes its listener itself
		return
	}
	_ = t.ln.Close()
	t.connsMu.Lock()
	for c, st := range t.conns {
		if st.handshaking.Load() {
			_ = c.SetDeadline(time.Now().Add(tlsStopGrace))
			continue // it sees stopping once its handshake is done
		}
		// Interrupt the read: the connection answers what its client had
		// sent by now, reads no more, and closes.
		_ = c.SetReadDeadline(time.Unix(1, 0))
	}
	t.connsMu.Unlock()
}

// drainRead bounds the last write of replies before a connection is closed
// for an oversized frame.
const drainRead = 20 * time.Millisecond

// drainIdle is how long a connection may stay quiet during a graceful stop
// (nothing read, nothing to write) before it is closed: long enough for a
// request already on its way, short enough for a prompt exit.
const drainIdle = 50 * time.Millisecond

// graceUntil is until when a stopping connection that has read what its
// client had sent may wait for a first request on its way: on a connection
// that has completed no message yet (accepted just before the stop, as
// during an upgrade's handover), the client may be about to send it. It
// waits while bytes keep coming (drainIdle since the last one), but never
// past drainIdle after the stop began nor past its idle deadline: a client
// that trickles bytes and never completes a message cannot hold a stop. A
// connection that has completed a message gets no grace: it answers what
// had arrived and closes, so a client that keeps sending cannot either.
// The zero time (the past) means no grace.
func (t *tcpShard) graceUntil(fresh bool, lastRead, idleDeadline time.Time) time.Time {
	if !fresh {
		return time.Time{}
	}
	return graceFrom(time.Unix(0, t.stopAt.Load()), lastRead, idleDeadline)
}

// graceFrom is the end of a fresh connection's grace counted from base
// (the stop's start, or a TLS handshake's end): drainIdle after base and
// after its last read, and never past its idle deadline.
func graceFrom(base, lastRead, idleDeadline time.Time) time.Time {
	end := lastRead.Add(drainIdle)
	if b := base.Add(drainIdle); b.Before(end) {
		end = b
	}
	if idleDeadline.Before(end) {
		end = idleDeadline
	}
	return end
}

// closeAll cuts every connection at once (Close, or a drain that ran out).
// served tells whether run was started: a running loop owns its fds.
func (t *tcpShard) closeAll(served bool) {
	if !t.stopping.Swap(true) {
		close(t.stopCh) // waits for memory end too
	}
	if t.loop != nil {
		if served {
			t.loop.hardStop()
		} else {
			t.loop.closeIdle()
		}
		return
	}
	_ = t.ln.Close()
	t.connsMu.Lock()
	for c := range t.conns {
		_ = c.SetLinger(0)
		_ = c.Close()
	}
	t.connsMu.Unlock()
}

func (t *tcpShard) snapshot() metrics.Snapshot {
	return metrics.Snapshot{Shard: t.id, CPU: t.cpu, Counts: t.ctr.Load(), Inode: t.inode, HeldBytes: uint64(max(t.mem.used.Load(), 0))}
}
