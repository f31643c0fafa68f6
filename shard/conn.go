package shard

import (
	"net"
	"net/netip"
	"time"

	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/shard/mmsg"
)

// rxMsg is one receive slot: a buffer the shard owns and what the last
// receive call put in it: one datagram, or with UDP_GRO several datagrams
// of one flow coalesced by the kernel, which the shard serves one by one
// (seg bytes each, the last one possibly shorter).
type rxMsg struct {
	buf  []byte         // MaxPacket+1 bytes, or 64 KiB with GRO; allocated once
	n    int            // bytes received; a lone datagram's length as sent (it may exceed len(buf): truncated)
	seg  int            // length of each datagram in buf (the last may be shorter); n for a lone one
	segs int            // datagrams not served yet
	off  int            // where the next one starts in buf
	src  netip.AddrPort // sender, unmapped
	dst  netip.Addr     // local address it arrived on (wildcard sockets only)
}

// set records a receive of n bytes with UDP_GRO segment size seg (0: one
// datagram; see mmsg.Split) and makes every datagram in it due.
func (m *rxMsg) set(n, seg int) {
	m.n, m.off = n, 0
	m.seg, m.segs = mmsg.Split(n, seg)
}

// batchConn is a shard socket seen as batches. Implementations own no
// goroutines and are used by one shard goroutine only, except close.
type batchConn interface {
	// readBatch blocks until at least one datagram is queued, fills msgs[:n]
	// and returns n. After the read deadline passes it returns an error that
	// wraps os.ErrDeadlineExceeded.
	readBatch(msgs []rxMsg) (int, error)
	// drainBatch is readBatch that never blocks and ignores the read
	// deadline: it returns 0, nil when the queue is empty.
	drainBatch(msgs []rxMsg) (int, error)
	// writeBatch sends every reply it can and reports how many failed. err
	// is the first failure's cause: a refused datagram (the rest were still
	// tried) or the socket itself (closed: every reply not yet sent counts
	// as failed). It calls ready (if not nil) once, before the first reply
	// leaves, once the GSO sends of the replies are formed and counted.
	writeBatch(replies []packet.Reply, ready func()) (failed int, err error)
	// setReadDeadline unblocks readBatch (used with a past time to stop).
	setReadDeadline(t time.Time) error
	// batchIO tells whether reads and writes are really batched.
	batchIO() bool
}

// stdConn is the portable path: one datagram per call through the standard
// library (zero allocations with the AddrPort methods).
type stdConn struct {
	c *net.UDPConn
}

func (s stdConn) readBatch(msgs []rxMsg) (int, error) {
	m := &msgs[0]
	n, src, err := s.c.ReadFromUDPAddrPort(m.buf)
	if err != nil {
		return 0, err
	}
	// The slot is one byte longer than MaxPacket, so a full slot means a
	// longer datagram whose true length this path cannot know.
	m.set(n, 0) // n == len(m.buf) > MaxPacket: truncated
	m.src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	m.dst = netip.Addr{}
	return 1, nil
}

// drainBatch has nothing to do here: the portable path cannot read without
// blocking, so datagrams still queued at shutdown are left to the kernel.
func (s stdConn) drainBatch([]rxMsg) (int, error) { return 0, nil }

func (s stdConn) writeBatch(replies []packet.Reply, ready func()) (failed int, err error) {
	if ready != nil {
		ready()
	}
	for _, r := range replies {
		// The standard library maps IPv4 destinations for dual-stack sockets itself.
		if _, werr := s.c.WriteToUDPAddrPort(r.Data, r.Dst); werr != nil {
			failed++
			if err == nil {
				err = werr
			}
		}
	}
	return failed, err
}

func (s stdConn) setReadDeadline(t time.Time) error { return s.c.SetReadDeadline(t) }
func (s stdConn) batchIO() bool                     { return false }
