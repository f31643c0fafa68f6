package shard

import (
	"net"
	"net/netip"
	"time"

	"github.com/shardd/shardd/packet"
)

// rxMsg is one receive slot: a buffer the shard owns and what the last
// receive call put in it.
type rxMsg struct {
	buf   []byte         // MaxPacket+1 bytes, allocated once
	n     int            // datagram length as sent (may exceed len(buf) when truncated)
	trunc bool           // the datagram did not fit in buf
	src   netip.AddrPort // sender, unmapped
	dst   netip.Addr     // local address it arrived on (wildcard sockets only)
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
	// writeBatch sends every reply it can and reports how many left, with
	// their bytes, and how many failed. err is the first failure's cause:
	// a refused datagram (the rest were still tried) or the socket itself
	// (closed: every reply not yet sent counts as failed).
	writeBatch(replies []packet.Reply) (sent int, bytes uint64, failed int, err error)
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
	m.n, m.trunc = n, n >= len(m.buf)
	m.src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	m.dst = netip.Addr{}
	return 1, nil
}

// drainBatch has nothing to do here: the portable path cannot read without
// blocking, so datagrams still queued at shutdown are left to the kernel.
func (s stdConn) drainBatch([]rxMsg) (int, error) { return 0, nil }

func (s stdConn) writeBatch(replies []packet.Reply) (sent int, bytes uint64, failed int, err error) {
	for _, r := range replies {
		// The standard library maps IPv4 destinations for dual-stack sockets itself.
		if _, werr := s.c.WriteToUDPAddrPort(r.Data, r.Dst); werr != nil {
			failed++
			if err == nil {
				err = werr
			}
			continue
		}
		sent++
		bytes += uint64(len(r.Data))
	}
	return sent, bytes, failed, err
}

func (s stdConn) setReadDeadline(t time.Time) error { return s.c.SetReadDeadline(t) }
func (s stdConn) batchIO() bool                     { return false }
