package packet

import (
	"net/netip"
	"unsafe"
)

// Reply is one queued reply: a span of the queue's slab and where it goes.
type Reply struct {
	Data []byte         // valid until the queue is Reset
	Dst  netip.AddrPort // the sender of the packet being answered
	Src  netip.Addr     // local address to send from (Packet.Dst); invalid: let the kernel choose
}

// ReplyQueue holds the replies of one shard until they are sent. It is the
// shard's side of replying; handlers see only the [ReplyWriter] that Begin
// returns. It never allocates after NewReplyQueue: replies are appended to
// one slab, bufio.Writer-style.
//
// The shard calls Begin before each packet, or once before the packets of
// one source to one destination that it serves in a row (the datagrams of
// one UDP GRO buffer). If Room reports too little room,
// it sends what is queued (Replies, then Reset) first, so a handler always
// has room for at least one reply of ReplyWriter.MaxReply bytes.
type ReplyQueue struct {
	slab     []byte
	used     int
	replies  []Reply
	maxReply int
	dst      netip.AddrPort
	src      netip.Addr
	w        ReplyWriter // the handlers' view, handed out by Begin
}

// NewReplyQueue returns a queue that holds up to maxReplies replies in a
// slab of slabSize bytes, each at most maxReply bytes long.
func NewReplyQueue(maxReplies, slabSize, maxReply int) *ReplyQueue {
	if maxReply > slabSize {
		maxReply = slabSize
	}
	q := &ReplyQueue{
		slab:     make([]byte, slabSize),
		replies:  make([]Reply, 0, maxReplies),
		maxReply: maxReply,
	}
	q.w.q = q
	return q
}

// Begin points the queue at the packet about to be served (or the packets
// of one source and destination served in a row) and returns the writer to
// hand to its handler: replies go to p.Src, from p.Dst, whatever a handler
// does to p. The writer is the same on every call; it is valid until the
// next Begin.
func (q *ReplyQueue) Begin(p *Packet) *ReplyWriter {
	q.dst = p.Src
	q.src = p.Dst
	return &q.w
}

// Room reports whether one more reply of the largest size (ReplyWriter.MaxReply) is sure to fit.
func (q *ReplyQueue) Room() bool {
	return len(q.replies) < cap(q.replies) && len(q.slab)-q.used >= q.maxReply
}

// Len returns the number of queued replies.
func (q *ReplyQueue) Len() int { return len(q.replies) }

// Bytes returns the total length of the queued replies.
func (q *ReplyQueue) Bytes() int { return q.used }

// Replies returns the queued replies, oldest first. The slice is the queue's
// own and valid until Reset.
func (q *ReplyQueue) Replies() []Reply { return q.replies }

// Reset drops every queued reply and makes the whole slab free again.
func (q *ReplyQueue) Reset() {
	clear(q.replies) // do not keep stale addresses reachable from the backing array
	q.replies = q.replies[:0]
	q.used = 0
}

// ReplyWriter is what a handler may do with the shard's [ReplyQueue]: build
// replies to the packet being served and queue them. It cannot see, drop or
// send other packets' replies, nor change where its own go; the shard does
// that. A handler must not keep it after ServePacket returns.
type ReplyWriter struct {
	q *ReplyQueue
}

// MaxReply is the largest reply Write accepts.
func (w *ReplyWriter) MaxReply() int { return w.q.maxReply }

// AvailableBuffer returns an empty slice over the free part of the slab, at
// most MaxReply bytes in capacity. Append the reply to it and pass the result
// to Write: a reply built in place is queued without a copy.
func (w *ReplyWriter) AvailableBuffer() []byte {
	q := w.q
	end := min(q.used+q.maxReply, len(q.slab))
	return q.slab[q.used:q.used:end]
}

// Write queues b as a reply to the current packet's sender. It copies b into
// the slab unless b was built in AvailableBuffer. It never keeps b itself.
// A reply longer than MaxReply returns ErrReplyTooLarge; when the queue has
// no room left it returns ErrReplyQueueFull (the shard gives each packet room
// for one reply of MaxReply bytes; a second reply may not fit).
func (w *ReplyWriter) Write(b []byte) (int, error) {
	q := w.q
	if len(b) > q.maxReply {
		return 0, ErrReplyTooLarge
	}
	if len(q.replies) == cap(q.replies) || len(b) > len(q.slab)-q.used {
		return 0, ErrReplyQueueFull
	}
	start := q.used
	if len(b) > 0 && unsafe.SliceData(b) != unsafe.SliceData(q.slab[start:]) {
		copy(q.slab[start:], b)
	}
	q.used += len(b)
	q.replies = append(q.replies, Reply{Data: q.slab[start:q.used:q.used], Dst: q.dst, Src: q.src})
	return len(b), nil
}
