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

	mu       sync.Mutex // guards handler, w, pkt, counts, panicked
	panicked bool       // a handler panic was logged once already
	handler  packet.Handler
	w        *packet.ReplyWriter
	pkt      packet.Packet
	counts   metrics.Counts
	ctr      metrics.Shard

	connsMu sync.Mutex
	conns   map[*net.TCPConn]struct{}
	wg      sync.WaitGroup
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
		w:     packet.NewReplyWriter(16, 2*max(cfg.MaxFrame, maxStreamReply), max(cfg.MaxFrame, maxStreamReply)),
		conns: map[*net.TCPConn]struct{}{},
	}
	t.framer, _ = h.(packet.Framer)
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
	if t.loop != nil {
		return t.loop.run()
	}
	defer t.wg.Wait()
	for {
		c, err := t.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// EMFILE and friends: count, breathe, go on.
			t.log.Warn("accept failed", zap.Error(err))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !t.admit() {
			_ = c.SetLinger(0) // refuse at once, no TIME_WAIT on our side
			_ = c.Close()
			continue
		}
		// stop sets stopping before it walks conns under connsMu, so a
		// connection registered here either gets stop's short deadline or
		// sees stopping itself (serveConn) and takes that deadline.
		t.connsMu.Lock()
		t.conns[c] = struct{}{}
		t.connsMu.Unlock()
		t.wg.Add(1)
		go t.serveConn(c)
	}
}

// admit counts an accepted connection and reports whether --max-conns
// leaves room for it; one over the limit is counted as closed for "limit".
func (t *tcpShard) admit() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts.Accepted++
	over := t.counts.Active() > uint64(t.cfg.MaxConns)
	if over {
		t.counts.Closed[metrics.CloseLimit]++
	}
	t.ctr.Publish(&t.counts)
	return !over
}

// serveConn reads, frames, serves and answers one connection.
func (t *tcpShard) serveConn(c *net.TCPConn) {
	defer t.wg.Done()
	reason := metrics.CloseError
	var buf []byte
	defer func() {
		t.connsMu.Lock()
		delete(t.conns, c)
		t.connsMu.Unlock()
		_ = c.Close()
		t.mu.Lock()
		t.counts.Closed[reason]++
		t.counts.DiscardedBytes += uint64(len(buf))
		t.ctr.Publish(&t.counts)
		t.mu.Unlock()
	}()
	src := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	// A raw stream makes each read one message, so a read never asks for
	// more than a message may hold.
	chunk := 16 << 10
	if t.framer == nil {
		chunk = min(chunk, t.cfg.MaxFrame)
	}
	buf = make([]byte, 0, chunk)
	var out []byte
	// A message must complete within the idle timeout of the previous one:
	// bytes that do not finish a frame do not extend it (slow clients).
	deadline := time.Now().Add(t.cfg.IdleTimeout)
	var stopDeadline time.Time
	for {
		if !t.stopping.Load() {
			_ = c.SetReadDeadline(deadline)
		}
		if t.stopping.Load() && stopDeadline.IsZero() {
			// Stopping (perhaps before stop() could see this connection):
			// read what the client already sent, briefly, then close.
			stopDeadline = time.Now().Add(drainIdle)
			_ = c.SetReadDeadline(stopDeadline)
		}
		if cap(buf)-len(buf) < chunk/2 {
			// Grow for a long frame; framing caps it at MaxFrame.
			nb := make([]byte, len(buf), 2*cap(buf))
			copy(nb, buf)
			buf = nb
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		var consumed int
		var ferr error
		out, consumed, ferr = t.serveBytes(buf, src, out[:0], err == io.EOF)
		if consumed > 0 {
			deadline = time.Now().Add(t.cfg.IdleTimeout)
			if t.stopping.Load() { // still busy while stopping: keep serving a little longer
				stopDeadline = time.Now().Add(drainIdle)
				_ = c.SetReadDeadline(stopDeadline)
			}
			buf = buf[:copy(buf, buf[consumed:])]
		}
		if len(out) > 0 {
			_ = c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
			if _, werr := c.Write(out); werr != nil {
				reason = metrics.CloseError
				if errors.Is(werr, os.ErrDeadlineExceeded) {
					reason = metrics.CloseWriteTimeout
				}
				return
			}
		}
		switch {
		case ferr != nil:
			reason = metrics.CloseFrameTooLarge
			return
		case err == io.EOF:
			// Half-close: the client is done sending; everything it sent
			// is answered above. Closing tells it we are done too.
			reason = metrics.CloseEOF
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			reason = metrics.CloseIdle
			if t.stopping.Load() {
				reason = metrics.CloseShutdown
			}
			return
		case err != nil:
			reason = metrics.CloseError
			return
		}
		if t.framer == nil && cap(buf) > chunk {
			buf = make([]byte, 0, chunk) // a raw stream keeps nothing between reads
		}
	}
}

// serveBytes hands every complete message in buf to the handler and returns
// the framed replies appended to out and how many bytes were consumed. eof
// says the client has sent everything: a framer that is a
// packet.FinalFramer then gets the bytes left after the last frame.
func (t *tcpShard) serveBytes(buf []byte, src netip.AddrPort, out []byte, eof bool) ([]byte, int, error) {
	if len(buf) == 0 {
		return out, 0, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	consumed := 0
	var ferr error
	for consumed < len(buf) {
		var msg []byte
		adv := len(buf) - consumed
		if t.framer != nil {
			var err error
			adv, msg, err = t.framer.Frame(buf[consumed:], t.cfg.MaxFrame)
			if err != nil {
				ferr = err
				break
			}
			if adv == 0 {
				break
			}
		} else {
			msg = buf[consumed:]
		}
		consumed += adv
		out = t.serveOne(msg, src, out)
	}
	// At EOF what is left may still be the last message (packet.FinalFramer).
	if eof && ferr == nil && consumed < len(buf) {
		if ff, ok := t.framer.(packet.FinalFramer); ok {
			if msg, ok := ff.FinalFrame(buf[consumed:]); ok {
				consumed = len(buf)
				out = t.serveOne(msg, src, out)
			}
		}
	}
	t.ctr.Publish(&t.counts)
	return out, consumed, ferr
}

// serveOne runs the handler on one message; t.mu is held.
func (t *tcpShard) serveOne(msg []byte, src netip.AddrPort, out []byte) (ret []byte) {
	t.counts.RxPackets++
	t.counts.RxBytes += uint64(len(msg))
	t.pkt.Data, t.pkt.Src = msg, src
	t.w.Reset()
	t.w.Begin(&t.pkt)
	defer func() {
		if r := recover(); r != nil {
			t.counts.HandlerErrors++
			if !t.panicked { // once, as the UDP shard does: a client must not flood the log
				t.panicked = true
				t.log.Error("handler panicked on a TCP message; it was dropped and counted (further panics only in shardd_handler_errors_total)", zap.Any("panic", r))
			}
			ret = out
		}
	}()
	if err := t.handler.ServePacket(t.w, &t.pkt); err != nil {
		t.counts.HandlerErrors++
	}
	for _, r := range t.w.Replies() {
		if t.framer != nil {
			out = t.framer.AppendFrame(out, r.Data)
		} else {
			out = append(out, r.Data...)
		}
		t.counts.TxPackets++
		t.counts.TxBytes += uint64(len(r.Data))
	}
	return out
}

// stop closes the listener (no new connections) and tells every connection
// to finish: what it has read is served, then it closes. After the drain
// deadline, connections still open are cut.
func (t *tcpShard) stop() {
	if t.stopping.Swap(true) {
		return
	}
	if t.loop != nil {
		t.loop.wake() // the loop closes its listener itself
		return
	}
	_ = t.ln.Close()
	t.connsMu.Lock()
	for c := range t.conns {
		// The reader goes on serving while the client is busy and closes
		// once it has been quiet for drainIdle.
		_ = c.SetReadDeadline(time.Now().Add(drainIdle))
	}
	t.connsMu.Unlock()
}

// drainRead bounds the last write of replies before a connection is closed
// for an oversized frame.
const drainRead = 20 * time.Millisecond

// drainIdle is how long a connection may stay quiet during a graceful stop
// (nothing read, nothing to write) before it is closed: long enough for a
// request already on its way, short enough for a prompt exit. Busy
// connections go on until the stop's deadline (--drain-timeout).
const drainIdle = 50 * time.Millisecond

// closeAll cuts every connection at once (Close, or a drain that ran out).
// served tells whether run was started: a running loop owns its fds.
func (t *tcpShard) closeAll(served bool) {
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
	return metrics.Snapshot{Shard: t.id, CPU: t.cpu, Counts: t.ctr.Load(), Inode: t.inode}
}
