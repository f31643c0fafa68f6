package shard

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/shard/mmsg"
)

// Replies sent with generic segmentation offload (UDP_SEGMENT): the replies
// of one batch that go to the same destination, from the same source, with
// the same size (the last may be shorter) leave in one message of up to
// mmsg.MaxSegments datagrams, which the kernel cuts into the datagrams. Their
// bytes are contiguous in the reply slab (packet.ReplyQueue appends each
// reply where the last ended), so such a message is one iovec; replies that
// are not contiguous are gathered from several.

// txGroup is what one header of a sendmmsg carries: replies
// first..first+segs-1, each size bytes but the last, which may be shorter.
type txGroup struct{ first, segs, size, iov int } // iov: its first iovec

// errGSOUnsupported: GSO was required and the kernel lacks it.
var errGSOUnsupported = errors.New("GSO on: this kernel does not support UDP_SEGMENT (Linux 4.18 or later); use GSO auto or off")

// setupGSO turns grouped replies on for the shard's socket as mode asks,
// counting GSO sends into c.
func setupGSO(bc batchConn, mode Offload, c *metrics.Counts) error {
	m, ok := bc.(*mmsgConn)
	switch {
	case mode == OffloadOff:
		return nil
	case !ok:
		if mode == OffloadOn {
			return errGSOUnsupported
		}
		return nil
	}
	supported := false
	if err := m.rc.Control(func(fd uintptr) { supported = mmsg.SupportsSegment(fd) }); err != nil {
		return err
	}
	if !supported {
		if mode == OffloadOn {
			return errGSOUnsupported
		}
		return nil
	}
	o := mmsg.Options{Addrs: true, Control: mmsg.SegmentSpace}
	if m.pktinfo {
		o.Control += mmsg.SendPktinfoSpace
	}
	m.tx = *mmsg.NewBatch(m.tx.Len(), o)
	m.gso, m.gsoMax, m.gsoCounts = true, mmsg.MaxSegmentBytes+1, c
	return nil
}

// gsoOn tells whether bc groups replies into GSO sends.
func gsoOn(bc batchConn) bool {
	m, ok := bc.(*mmsgConn)
	return ok && m.gso
}

// fill readies the headers of one sendmmsg from replies[next:] and returns
// how many it filled, the first reply it did not take, and how many it
// refused (a destination the socket cannot send to).
func (m *mmsgConn) fill(replies []packet.Reply, next int) (k, end, bad int) {
	iov := 0
	for next < len(replies) && iov < m.tx.Len() {
		r := &replies[next]
		if !m.tx.SetAddr(k, m.family, r.Dst) {
			bad++
			next++
			continue
		}
		if m.pktinfo {
			m.tx.SetPktinfo(k, m.family, r.Src)
		} else {
			m.tx.ClearControl(k)
		}
		first := iov
		g := txGroup{first: next, segs: 1, size: len(r.Data), iov: first}
		m.tx.SetBuf(iov, r.Data)
		iov++
		if m.gso && g.size > 0 && g.size < m.gsoMax {
			iov = m.group(replies, &g, iov)
		}
		m.tx.Gather(k, first, iov-first)
		if g.segs > 1 {
			m.tx.SetSegment(k, g.size)
			// Counted as the send is formed, before the counters are
			// published and the send leaves (writeBatch).
			m.gsoCounts.TxGSOSends[metrics.GSOBucket(g.segs)]++
			m.gsoCounts.TxGSODatagrams += uint64(g.segs)
		}
		m.txGroups[k] = g
		next = g.first + g.segs
		k++
	}
	m.txIovs = max(m.txIovs, iov)
	return k, next, bad
}

// group adds to g the replies after it that may leave in the same GSO send,
// their data in iovecs from iov on, and returns the next free iovec.
func (m *mmsgConn) group(replies []packet.Reply, g *txGroup, iov int) int {
	head := &replies[g.first]
	total := g.size
	for next := g.first + 1; next < len(replies) && g.segs < mmsg.MaxSegments; next++ {
		r := &replies[next]
		n := len(r.Data)
		if n == 0 || n > g.size || total+n > mmsg.MaxSegmentBytes || r.Dst != head.Dst || (m.pktinfo && r.Src != head.Src) {
			break
		}
		if !m.tx.Extend(iov-1, r.Data) {
			if iov == m.tx.Len() {
				break
			}
			m.tx.SetBuf(iov, r.Data)
			iov++
		}
		g.segs++
		total += n
		if n < g.size {
			break // a shorter segment ends a GSO send
		}
	}
	return iov
}

// txTally adds up one writeBatch.
type txTally struct {
	failed int
	err    error
}

// sendFilled sends headers 0..k-1 of replies, a GSO send the kernel
// refuses in a way that says to send its replies one by one as such
// (sendAlone), and reports whether the socket closed, with the replies of
// headers not sent counted as failed.
func (m *mmsgConn) sendFilled(k int, replies []packet.Reply, t *txTally) (closed bool) {
	for from := 0; from < k; {
		m.txFrom, m.txTo = from, k
		if werr := m.rc.Control(m.sendCall); werr != nil {
			for i := from; i < k; i++ {
				t.failed += m.txGroups[i].segs
			}
			t.err = m.closedErr(werr)
			return true
		}
		if m.txErrno == 0 {
			from += m.txN
			continue
		}
		// sendmmsg reports an error only for the first message of the
		// call (no route, EPERM from a firewall...): skip it and go on.
		g := m.txGroups[from]
		from++
		if g.segs > 1 && m.gsoRefused(m.txErrno, g.size) {
			if m.sendAlone(from-1, replies, t) {
				for i := from; i < k; i++ {
					t.failed += m.txGroups[i].segs
				}
				return true
			}
			continue
		}
		t.failed += g.segs
		t.fail(os.NewSyscallError("sendmmsg", m.txErrno))
	}
	return false
}

// sendAlone sends the replies of header h, a GSO send the kernel refused,
// one by one through that header (same destination and source), and
// reports whether the socket closed, with the replies not sent counted as
// failed. It runs once per refusal, which gsoRefused makes rare.
func (m *mmsgConn) sendAlone(h int, replies []packet.Reply, t *txTally) (closed bool) {
	g := m.txGroups[h]
	m.tx.ClearControl(h)
	if m.pktinfo {
		m.tx.SetPktinfo(h, m.family, replies[g.first].Src)
	}
	for i := g.first; i < g.first+g.segs; i++ {
		m.tx.SetBuf(g.iov, replies[i].Data)
		m.tx.Gather(h, g.iov, 1)
		m.txFrom, m.txTo = h, h+1
		if werr := m.rc.Control(m.sendCall); werr != nil {
			t.failed += g.first + g.segs - i
			t.err = m.closedErr(werr)
			return true
		}
		if m.txErrno != 0 {
			t.failed++
			t.fail(os.NewSyscallError("sendmmsg", m.txErrno))
		}
	}
	return false
}

// fail records err as the batch's error unless it has one.
func (t *txTally) fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

// gsoRefused tells whether errno, the kernel's answer to a GSO send of
// size-byte segments, means its replies should go one by one, and
// remembers what it says, as wireguard-go does with EIO: EIO (the device
// cannot checksum, or IPsec is in the way) stops GSO on the socket;
// EMSGSIZE (Linux 6.x) or EINVAL (older kernels), a segment over the
// path's MTU (the whole never exceeds a datagram's limit: group caps it),
// stops grouping replies of this size or larger.
func (m *mmsgConn) gsoRefused(errno syscall.Errno, size int) bool {
	switch errno {
	case unix.EIO:
		m.gso = false
	case unix.EINVAL, unix.EMSGSIZE:
		m.gsoMax = min(m.gsoMax, size)
	default:
		return false
	}
	m.gsoRefusals++
	m.gsoRefusal = errno
	return true
}
