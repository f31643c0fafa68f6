package shard

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/shard/mmsg"
)

// shard is one socket and the loop that serves it. Everything but stopping,
// ctr and the socket's meminfo is touched by the shard's goroutine only.
type shard struct {
	id        int
	cpu       int          // -1: not pinned
	inode     uint64       // the socket's inode, for shardd inspect
	conn      *net.UDPConn // as bound; closed once detached (Linux)
	sock      socket       // what the shard reads: conn, or its detached *os.File
	rc        syscall.RawConn
	bc        batchConn
	msgs      []rxMsg
	gro       bool // UDP_GRO is on: a slot may hold several datagrams
	handler   packet.Handler
	pub       packet.Publisher // the handler, if it publishes counters per batch
	replies   *packet.ReplyQueue
	pkt       packet.Packet
	maxPacket int            // the largest datagram handled (Config.MaxPacket)
	counts    metrics.Counts // the shard's running totals, published per batch
	ctr       metrics.Shard
	publishFn func() // s.publish, made once (a method value per flush would allocate)
	stopping  atomic.Bool
	handoff   atomic.Bool // stopping for an upgrade: another process serves the socket
	log       *zap.Logger
	yield     yielder // hands the locked thread to the scheduler now and then (see yielder)

	finalMem atomic.Pointer[socketMem] // SO_MEMINFO read just before close
	panicked bool                      // a handler panic was logged once already
	errSeen  map[string]bool           // error kinds logged once already

	xdp []*xdpPort // AF_XDP sockets, one per --xdp interface (Config.XDP)
}

func newShard(id int, cfg *resolved, conn *net.UDPConn, pktinfo bool) (*shard, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &shard{
		id:        id,
		cpu:       -1,
		conn:      conn,
		sock:      conn,
		rc:        rc,
		handler:   cfg.NewHandler(id),
		maxPacket: cfg.MaxPacket,
		log:       cfg.Logger.With(zap.Int("shard", id)),
		errSeen:   map[string]bool{},
	}
	s.replies = packet.NewReplyQueue(cfg.Batch, cfg.Batch*cfg.MaxPacket, min(cfg.MaxPacket, maxUDPPayload))
	s.pub, _ = s.handler.(packet.Publisher)
	s.publishFn = s.publish
	s.pkt.Proto = packet.UDP
	s.pkt.Shard = id
	if !cfg.noBatchIO {
		if err := s.batchIO(cfg, pktinfo); err != nil {
			return nil, err
		}
	}
	if s.bc == nil {
		// One datagram per call: the kernel must not coalesce (an inherited
		// socket may have UDP_GRO on), and OffloadOn cannot be honoured.
		if cfg.GRO == OffloadOn {
			return nil, groError(cfg, id, errors.New("UDP_GRO needs batched receives (recvmmsg), unavailable here"))
		}
		groOff(rc)
		s.msgs = newSlots(cfg.Batch, cfg.MaxPacket, false)
		s.bc = stdConn{conn}
	}
	if err := setupGSO(s.bc, cfg.GSO, &s.counts); err != nil {
		_ = s.sock.Close()
		return nil, err
	}
	return s, nil
}

// batchIO takes the socket out of the netpoller and reads it with
// recvmmsg, with UDP_GRO as cfg.GRO asks. A socket that cannot be detached
// is left to the portable path (s.bc stays nil).
func (s *shard) batchIO(cfg *resolved, pktinfo bool) error {
	conn := s.conn
	f, err := detach(conn)
	if err != nil {
		if !errors.Is(err, errors.ErrUnsupported) {
			s.log.Warn("cannot take the socket out of the netpoller; reading one datagram per call", zap.Error(err))
		}
		return nil
	}
	frc, err := f.SyscallConn()
	offWhenIdle := false
	if err == nil {
		s.gro, offWhenIdle, err = setGRO(frc, cfg.GRO)
		if err != nil {
			err = groError(cfg, s.id, err)
		}
	}
	if err != nil {
		_ = f.Close()
		return err
	}
	s.msgs = newSlots(cfg.Batch, cfg.MaxPacket, s.gro)
	bc, err := newMmsgConn(frc, conn.LocalAddr(), s.msgs, pktinfo)
	if err != nil {
		_ = f.Close()
		return err
	}
	if offWhenIdle {
		s.groOffWhenIdle(bc)
	}
	s.bc, s.sock, s.rc = bc, f, frc
	return nil
}

// groError is the one-line start-up error of OffloadOn where GRO cannot be had.
func groError(cfg *resolved, id int, err error) error {
	return &ListenError{Addr: cfg.Addr, Shard: id, Err: err, Hint: "the kernel needs UDP generic receive offload (Linux 5.0 or later); use GRO auto (on where supported) or off"}
}

// newSlots makes batch receive slots in one slab. Each is one byte longer
// than maxPacket so the portable path can tell a longer datagram from a
// full one, and with GRO at least mmsg.GROSlot, to hold a coalesced buffer whole.
func newSlots(batch, maxPacket int, gro bool) []rxMsg {
	slot := maxPacket + 1
	if gro {
		slot = max(slot, mmsg.GROSlot)
	}
	slab := make([]byte, batch*slot)
	msgs := make([]rxMsg, batch)
	for i := range msgs {
		msgs[i].buf = slab[i*slot : (i+1)*slot : (i+1)*slot]
	}
	return msgs
}

// maxUDPPayload is the largest UDP payload over IPv6 (65535 - 8; IPv4's is
// 65507, and the kernel refuses a longer IPv4 reply with EMSGSIZE, counted as
// a send error), so an IPv6 datagram of any size can be echoed.
const maxUDPPayload = 65527

// run is the shard's goroutine. It locks its OS thread for good: a pinned
// thread must die with the goroutine rather than return to the scheduler
// with a changed affinity mask, so UnlockOSThread is never called.
func (s *shard) run() error {
	runtime.LockOSThread()
	if s.cpu >= 0 {
		if err := pinThread(s.cpu); err != nil {
			return fmt.Errorf("shard %d: pin to CPU %d: %w", s.id, s.cpu, err)
		}
	}
	if len(s.xdp) > 0 {
		return s.runXDP()
	}
	for {
		n, err := s.bc.readBatch(s.msgs)
		if err != nil {
			if done, ret := s.readFailed(err); done {
				return ret
			}
			continue
		}
		s.serveBatch(n)
		s.yield.maybe(time.Now())
	}
}

// readFailed takes a failed wait or read: at a stop it serves what is
// already queued and reports the loop done; after a close it reports
// ErrGroupClosed; any other error is counted and the loop goes on.
func (s *shard) readFailed(err error) (done bool, ret error) {
	if s.stopping.Load() && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed)) {
		s.drainXDP()
		if s.handoff.Load() {
			// The socket lives on in the new process, which reads
			// the queue: nothing to drain here.
			return true, nil
		}
		return true, s.drain()
	}
	if errors.Is(err, net.ErrClosed) {
		return true, ErrGroupClosed
	}
	s.rxError(err)
	return false, nil
}

// drain serves what is already queued in the socket, without blocking. The
// stop fenced the socket first (attachDropAll), so the queue only shrinks:
// everything that reached the socket before the fence is served, everything
// after it is a counted kernel drop, and nothing is left queued at close.
func (s *shard) drain() error {
	for {
		n, err := s.bc.drainBatch(s.msgs)
		if err != nil || n == 0 {
			if err != nil && !errors.Is(err, net.ErrClosed) {
				s.rxError(err)
			}
			return nil
		}
		s.serveBatch(n)
	}
}

func (s *shard) rxError(err error) {
	s.counts.RxErrors++
	s.ctr.Publish(&s.counts)
	s.logOnce(err, "receive failed; counting further errors of this kind in shardd_rx_errors_total")
}

// logOnce logs the first error of each kind (errno, or message) and stays
// quiet for the rest: counters carry the volume, logs only the news.
func (s *shard) logOnce(err error, msg string) {
	kind := err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		kind = errno.Error()
	}
	if s.errSeen[kind] {
		return
	}
	s.errSeen[kind] = true
	s.log.Warn(msg, zap.Error(err))
}

// serveBatch hands the datagrams of the n received buffers to the handler,
// publishes the counters and sends the replies. The counters are published
// before the replies leave (flush), so a client that has seen a reply finds
// it, and its request, counted at the next scrape. With GRO a buffer may
// hold many datagrams, so a batch may bring more than Batch of them: when
// the reply queue fills, serveFrom sends what it holds and goes on.
func (s *shard) serveBatch(n int) {
	s.counts.Batches++
	s.counts.BatchSizes[metrics.BatchBucket(n)]++
	s.counts.RxBuffers += uint64(n)
	for i := range s.msgs[:n] {
		m := &s.msgs[i]
		// Every datagram of the buffer, truncated ones included, at its
		// full length: the buffer's.
		s.counts.RxPackets += uint64(m.segs)
		s.counts.RxBytes += uint64(m.n)
		if s.gro {
			s.counts.GROSegments[metrics.BatchBucket(m.segs)]++
		}
	}
	for i := 0; i < n; {
		i = s.serveFrom(i, n)
	}
	if s.replies.Len() == 0 {
		s.publish()
		return
	}
	s.flush()
}

// serveFrom serves the datagrams of msgs[i:n] and returns n, or i after a
// datagram whose handler panicked (its slot is already past it): the panic
// costs that datagram only (counted as a handler error), and one deferred
// recover per batch keeps the common path cheap.
//
// A slot holds one datagram or, with GRO, several of one flow coalesced by
// the kernel, seg bytes each but the last: each is served in place, as its
// own packet, with the slot's source and destination, set once per slot
// (a handler does not change its Packet: packet.Handler), as are their
// replies' addresses (Begin). A datagram longer than MaxPacket, or cut short by
// its slot, is counted as truncated (serveBatch counted them received).
func (s *shard) serveFrom(i, n int) (next int) {
	defer func() {
		if r := recover(); r != nil {
			s.handlerPanicked(r, &s.counts)
			next = i
		}
	}()
	for ; i < n; i++ {
		m := &s.msgs[i]
		s.pkt.Src, s.pkt.Dst = m.src, m.dst
		w := s.replies.Begin(&s.pkt)
		for m.segs > 0 {
			off := m.off
			end := min(off+m.seg, m.n)
			m.segs--
			m.off = end
			if end-off > s.maxPacket || end > len(m.buf) {
				s.counts.Truncated++
				continue
			}
			if !s.replies.Room() {
				s.flush()
			}
			s.pkt.Data = m.buf[off:end:end] // the next datagram is not the handler's
			if err := s.handler.ServePacket(w, &s.pkt); err != nil {
				s.counts.HandlerErrors++
			}
		}
	}
	return n
}

// handlerPanicked counts a handler panic in c and logs the first.
func (s *shard) handlerPanicked(r any, c *metrics.Counts) {
	c.HandlerErrors++
	if !s.panicked {
		s.panicked = true
		s.log.Error("handler panicked; the packet was dropped and counted in shardd_handler_errors_total (logged once)",
			zap.Any("panic", r), zap.Stack("stack"))
	}
}

// flush counts the queued replies as sent and sends them; the counters,
// GSO sends included (counted as the sends are formed), are published once
// the sends are ready and before the first leaves (writeBatch's ready). A
// reply becomes visible to its client during the send call, so counting it
// only after the call returned would let a client see a reply (and scrape)
// before it, and its request, were counted. A reply the kernel refuses
// stays counted in TxPackets and is also counted in SendErrors: counters
// never go down, and refusals are rare (one publish more per batch that has
// any).
func (s *shard) flush() {
	if s.replies.Len() == 0 {
		return
	}
	s.counts.TxPackets += uint64(s.replies.Len())
	s.counts.TxBytes += uint64(s.replies.Bytes())
	failed, err := s.bc.writeBatch(s.replies.Replies(), s.publishFn)
	s.replies.Reset()
	if failed > 0 {
		// Known only once sent: which replies failed.
		s.counts.SendErrors += uint64(failed)
		s.ctr.Publish(&s.counts)
	}
	if err != nil {
		s.logOnce(err, "send failed; counting further failures of this kind in shardd_send_errors_total")
	}
}

// publish makes the counters of what was served so far visible to readers:
// the handler's (packet.Publisher), then the shard's.
func (s *shard) publish() {
	if s.pub != nil {
		s.pub.Publish()
	}
	s.ctr.Publish(&s.counts)
}

// snapshot reads the shard's counters and its socket's memory info.
func (s *shard) snapshot() metrics.Snapshot {
	snap := metrics.Snapshot{Shard: s.id, CPU: s.cpu, Counts: s.ctr.Load(), Inode: s.inode}
	mem := readSocketMem(s.rc)
	if !mem.ok {
		if f := s.finalMem.Load(); f != nil {
			mem = *f
			mem.queued = 0
		}
	}
	snap.KernelDrops, snap.QueueBytes, snap.RcvBuf = mem.drops, mem.queued, mem.rcvbuf
	return snap
}

// close records the socket's final drop count and closes it.
func (s *shard) close() error {
	if mem := readSocketMem(s.rc); mem.ok {
		s.finalMem.Store(&mem)
	}
	if c, ok := s.bc.(interface{ markClosed() }); ok {
		c.markClosed()
	}
	return s.sock.Close()
}

// socket is what a shard keeps of its UDP socket.
type socket interface {
	SyscallConn() (syscall.RawConn, error)
	Close() error
}

// socketFile returns a duplicate of the socket as a file (for an upgrade).
func socketFile(s socket) (*os.File, error) {
	switch c := s.(type) {
	case *net.UDPConn:
		return c.File()
	case *os.File:
		return dupFile(c, c.Name(), nil)
	}
	return nil, errors.ErrUnsupported
}

// dupFile duplicates c's descriptor (close-on-exec) into an *os.File named
// name. prep, when not nil, readies the duplicate before it becomes a file
// (detach makes it blocking, so that the runtime does not watch it).
func dupFile(c syscall.Conn, name string, prep func(fd uintptr) error) (*os.File, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup, err := dupFD(rc)
	if err != nil {
		return nil, err
	}
	if prep != nil {
		if err := prep(uintptr(dup)); err != nil {
			_ = os.NewFile(uintptr(dup), name).Close()
			return nil, err
		}
	}
	return os.NewFile(uintptr(dup), name), nil
}

// dupFD duplicates the socket's descriptor, close-on-exec.
func dupFD(rc syscall.RawConn) (int, error) {
	dup, derr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) { dup, derr = dupCloexec(fd) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", derr)
	}
	return dup, nil
}
