package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shardd/shardd/shard/mmsg"
)

// errRefused: the target port is closed (an ICMP port unreachable came back).
var errRefused = errors.New("connection refused: nothing listens on the target port")

// flow is one client socket: its own source port, so the server's 4-tuple
// hash sees it as one flow.
type flow struct {
	conn *net.UDPConn
	io   *mmsg.Conn
	tcp  *net.TCPConn  // --proto tcp: the flow is one connection
	rd   *bufio.Reader // its replies

	sent       atomic.Uint64 // datagrams the kernel took
	recv       atomic.Uint64 // replies matched (echo)
	unexpected atomic.Uint64 // replies that match nothing sent
	sendErrs   atomic.Uint64
	refused    atomic.Bool

	gso      bool           // sender-owned: cleared if the kernel refuses GSO sends
	gro      bool           // replies are received with UDP_GRO (coalesced, split again)
	seq      uint64         // next sequence; sender-owned
	expired  uint64         // requests given up on after --timeout; sender-owned
	lastSend time.Duration  // sender-owned
	lastRecv atomic.Int64   // time of the last matched reply, since the run's start
	sendTime []atomic.Int64 // dnsID/opaque echo: send time by sequence & ringMask
	hist     histogram      // receiver-owned
	fifo     uint64         // receiver-owned: next in-order sequence (opaque payloads)
	txBuf    []byte         // sender-owned: a TCP flow's write buffer
}

const ringSize = 1 << 16 // covers the 16-bit DNS ID space

// groSlots is the 64 KiB receive buffers of an echo flow with UDP_GRO: 16
// take up to 1024 coalesced replies per call, for 1 MiB per flow.
const groSlots = 16

// run holds one load run's shared state.
type run struct {
	cfg     *config
	start   time.Time
	flows   []*flow
	stopped atomic.Bool

	firstErr atomic.Pointer[error] // the first send error, for the summary
}

func newRun(cfg *config) (*run, error) {
	r := &run{cfg: cfg}
	for i := 0; cfg.proto == "tcp" && i < cfg.flows; i++ {
		c, err := net.DialTimeout("tcp", cfg.target.String(), 5*time.Second)
		if err != nil {
			r.close()
			if errors.Is(err, syscall.ECONNREFUSED) {
				return nil, errRefused
			}
			return nil, err
		}
		f := &flow{tcp: c.(*net.TCPConn)}
		f.rd = bufio.NewReaderSize(c, 64<<10)
		if cfg.mode == "echo" && cfg.kind != filler {
			f.sendTime = make([]atomic.Int64, ringSize)
		}
		r.flows = append(r.flows, f)
	}
	for i := 0; cfg.proto == "udp" && i < cfg.flows; i++ {
		if err := r.addUDPFlow(); err != nil {
			r.close()
			return nil, err
		}
	}
	return r, nil
}

// addUDPFlow opens one UDP flow: its socket (with GSO sends if asked, and
// GRO receives for echo) and its batch I/O.
func (r *run) addUDPFlow() error {
	cfg := r.cfg
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(cfg.target))
	if err != nil {
		return err
	}
	f := &flow{conn: c, gso: cfg.gso}
	r.flows = append(r.flows, f) // closed by r.close on any error below
	_ = c.SetWriteBuffer(4 << 20)
	_ = c.SetReadBuffer(4 << 20)
	if cfg.gso {
		if err := enableGSO(c, len(cfg.payload)); err != nil {
			return err
		}
	}
	if f.io, err = mmsg.NewConn(c, cfg.burst, max(len(cfg.payload), 2048)); err != nil {
		return err
	}
	if cfg.mode == "echo" {
		// Replies of a GSO-sending server (shardd --gso) arrive
		// coalesced: fewer, larger buffers, split again per reply.
		f.gro = f.io.EnableGRO(groSlots)
	}
	if cfg.mode == "echo" && cfg.kind != filler {
		f.sendTime = make([]atomic.Int64, ringSize)
	}
	return nil
}

func (r *run) close() {
	for _, f := range r.flows {
		if f.tcp != nil {
			f.tcp.Close()
		} else {
			f.conn.Close()
		}
	}
}

func (r *run) totals() (sent, recv uint64) {
	for _, f := range r.flows {
		sent += f.sent.Load()
		recv += f.recv.Load()
	}
	return sent, recv
}

// sender is one sendLoop's own state.
type sender struct {
	mine  []*flow  // flows[i] for i = id, id+senders, ...
	slab  []byte   // burst copies of the payload, stamped per send
	msgs  [][]byte // the burst's datagrams, in slab
	share float64  // datagrams per second; 0: as fast as possible
	total uint64   // datagrams sent
}

// sendLoop is one sender: it owns flows[i] for i = id, id+senders, ... and
// keeps its share of the target rate by sending bursts as they fall due.
func (r *run) sendLoop(id int, deadline time.Time) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfg := r.cfg
	s := &sender{share: cfg.rate / float64(cfg.senders)}
	for i := id; i < len(r.flows); i += cfg.senders {
		s.mine = append(s.mine, r.flows[i])
	}
	if len(s.mine) == 0 {
		return
	}
	size := len(cfg.payload)
	s.slab = make([]byte, cfg.burst*size)
	for i := 0; i < cfg.burst; i++ {
		copy(s.slab[i*size:], cfg.payload)
	}
	s.msgs = make([][]byte, cfg.burst)
	for k := 0; ; k++ {
		now := time.Now()
		// Past the deadline a paced sender still sends what fell due
		// before it (a sleep the scheduler stretched past the deadline
		// must not cut the count), then stops.
		late := now.After(deadline)
		if r.stopped.Load() || (late && s.share <= 0) {
			return
		}
		if late {
			now = deadline
		}
		n := s.due(r.start, now, deadline, cfg.burst)
		if n == 0 {
			if late {
				return
			}
			continue
		}
		f := s.mine[k%len(s.mine)]
		if n = r.windowRoom(f, n, k%len(s.mine) == len(s.mine)-1); n == 0 {
			if late {
				return
			}
			continue
		}
		r.sendBurst(s, f, n, deadline)
	}
}

// due is how many datagrams (at most burst) the sender may send now to
// keep its share of the rate. Ahead of the rate it sleeps until the next
// datagram is due, never past the deadline and briefly enough to notice a
// stop, and returns 0.
func (s *sender) due(start, now, deadline time.Time, burst int) int {
	if s.share <= 0 {
		return burst
	}
	due := s.share * now.Sub(start).Seconds()
	if float64(s.total) >= due {
		next := start.Add(time.Duration((float64(s.total) + 1) / s.share * float64(time.Second)))
		if d := min(next.Sub(now), deadline.Sub(now), 10*time.Millisecond); d > 0 {
			time.Sleep(d)
		}
		return 0
	}
	return min(burst, int(due-float64(s.total))+1)
}

// windowRoom limits n to the room left in f's echo window (--window); 0
// when the window is full. lastOfRound says every flow of the sender has
// just been tried.
func (r *run) windowRoom(f *flow, n int, lastOfRound bool) int {
	cfg := r.cfg
	if cfg.mode != "echo" || cfg.window <= 0 {
		return n
	}
	inflight := int(int64(f.sent.Load()) - int64(f.recv.Load()) - int64(f.expired))
	if inflight < 0 {
		// Late replies to requests given up on: they are received,
		// not new room in the window.
		f.expired -= uint64(-inflight)
		inflight = 0
	}
	if inflight < cfg.window {
		return min(n, cfg.window-inflight)
	}
	// A lost reply must not hold its window slot forever: after
	// --timeout without progress, give up on what is in flight.
	quiet := time.Since(r.start) - max(time.Duration(f.lastRecv.Load()), f.lastSend)
	if quiet > cfg.timeout {
		f.expired += uint64(inflight)
		return 0
	}
	if lastOfRound {
		time.Sleep(50 * time.Microsecond) // every flow is full: let replies come
	}
	return 0
}

// sendBurst stamps n datagrams and sends them on f.
func (r *run) sendBurst(s *sender, f *flow, n int, deadline time.Time) {
	cfg := r.cfg
	size := len(cfg.payload)
	sentAt := time.Since(r.start)
	for i := 0; i < n; i++ {
		d := s.slab[i*size : (i+1)*size]
		seq := f.seq + uint64(i)
		stamp(cfg.kind, d, seq, sentAt)
		if f.sendTime != nil {
			f.sendTime[seq&(ringSize-1)].Store(int64(sentAt))
		}
		s.msgs[i] = d
	}
	var took int
	var err error
	if f.tcp != nil {
		took, err = r.writeStream(f, s.msgs[:n], deadline)
	} else if f.gso {
		// One super-datagram: the kernel cuts it into n datagrams.
		if took, err = f.io.WriteBatch([][]byte{s.slab[:n*size]}); took == 1 {
			took = n
		}
		err = udpErr(err)
	} else {
		took, err = f.io.WriteBatch(s.msgs[:n])
		err = udpErr(err)
	}
	if err != nil {
		r.sendFailed(f, err)
		return
	}
	f.seq += uint64(took)
	f.lastSend = sentAt
	f.sent.Add(uint64(took))
	s.total += uint64(took)
}

// udpErr names a refused datagram (an ICMP port unreachable came back).
func udpErr(err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return errRefused
	}
	return err
}

// sendFailed counts a failed send on f, keeps the run's first error, and
// pauses so as not to spin on a failing socket.
func (r *run) sendFailed(f *flow, err error) {
	f.sendErrs.Add(1)
	e := err // a copy, so err itself stays off the heap in the send loop
	r.firstErr.CompareAndSwap(nil, &e)
	switch {
	case errors.Is(err, errRefused):
		f.refused.Store(true)
	case f.gso && r.cfg.gsoArg == "auto" && gsoRefused(err):
		// The path cannot take GSO sends (MTU, no checksum offload):
		// this flow goes on with plain sendmmsg.
		if disableGSO(f.conn) == nil {
			f.gso = false
		}
	}
	time.Sleep(time.Millisecond)
}

// writeStream writes n messages on a TCP flow in one write, framed with a
// 2-byte length for DNS payloads (RFC 7766), and returns how many left whole.
func (r *run) writeStream(f *flow, msgs [][]byte, deadline time.Time) (int, error) {
	buf := f.txBuf[:0]
	for _, m := range msgs {
		if r.cfg.kind == dnsID {
			buf = append(buf, byte(len(m)>>8), byte(len(m)))
		}
		buf = append(buf, m...)
	}
	f.txBuf = buf
	_ = f.tcp.SetWriteDeadline(deadline.Add(time.Second))
	n, err := f.tcp.Write(buf)
	per := len(buf) / len(msgs)
	return n / per, err
}

// readMessage reads one reply from a TCP flow into buf.
func (r *run) readMessage(f *flow, buf []byte) ([]byte, error) {
	size := len(r.cfg.payload)
	if r.cfg.kind == dnsID {
		if len(buf) < 2 {
			return nil, fmt.Errorf("reply buffer of %d bytes", len(buf))
		}
		if _, err := io.ReadFull(f.rd, buf[:2]); err != nil { // buf, not a local array: no allocation per reply
			return nil, err
		}
		size = int(buf[0])<<8 | int(buf[1])
	}
	if size > len(buf) {
		return nil, fmt.Errorf("reply of %d bytes", size)
	}
	_, err := io.ReadFull(f.rd, buf[:size])
	return buf[:size], err
}

// recvLoop reads one flow's replies until its socket closes.
func (r *run) recvLoop(f *flow, wg *sync.WaitGroup) {
	defer wg.Done()
	out := make([][]byte, r.cfg.burst)
	if f.tcp != nil {
		buf := make([]byte, 65536)
		for {
			m, err := r.readMessage(f, buf)
			if err != nil {
				return // closed
			}
			out[0] = m
			r.match(f, out[:1])
		}
	}
	for {
		n, err := f.io.ReadBatch(out)
		if err != nil {
			if errors.Is(udpErr(err), errRefused) {
				f.refused.Store(true)
				continue
			}
			return // closed
		}
		r.match(f, out[:n])
	}
}

// match counts a batch of replies and records their round trips.
func (r *run) match(f *flow, replies [][]byte) {
	now := time.Since(r.start)
	matched := uint64(0)
	for _, d := range replies {
		seq, sentAt, ok := replySeq(r.cfg.kind, d)
		switch {
		case !ok:
			f.unexpected.Add(1)
			continue
		case r.cfg.kind == opaque:
			seq = f.fifo
			f.fifo++
			fallthrough
		case r.cfg.kind == dnsID:
			sentAt = time.Duration(f.sendTime[seq&(ringSize-1)].Load())
		case seq >= f.sent.Load()+uint64(r.cfg.burst):
			// Never sent (the slack covers a reply that beats the
			// sender's own count update).
			f.unexpected.Add(1)
			continue
		}
		f.hist.record(now - sentAt)
		matched++
	}
	if matched > 0 {
		f.lastRecv.Store(int64(now))
		f.recv.Add(matched)
	}
}
