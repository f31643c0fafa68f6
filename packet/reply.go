package packet

import (
	"net/netip"
	"unsafe"
)

// Reply is one queued reply: a span of the writer's slab and where it goes.
type Reply struct {
	Data []byte         // valid until the writer is Reset
	Dst  netip.AddrPort // the sender of the packet being answered
	Src  netip.Addr     // local address to send from (Packet.Dst); invalid: let the kernel choose
}

// ReplyWriter queues replies in memory owned by one shard. It never allocates
// after NewReplyWriter: replies are appended to one slab, bufio.Writer-style.
//
// The shard calls Begin before each packet; if Free reports too little room it
// sends what is queued (Replies, then Reset) first, so a handler always has
// room for at least one reply of MaxReply bytes.
type ReplyWriter struct {
	slab     []byte
	used     int
	replies  []Reply
	maxReply int
	dst      netip.AddrPort
	src      netip.Addr
}

// NewReplyWriter returns a writer that holds up to maxReplies replies in a
// slab of slabSize bytes, each at most maxReply bytes long.
func NewReplyWriter(maxReplies, slabSize, maxReply int) *ReplyWriter {
	if maxReply > slabSize {
		maxReply = slabSize
	}
	return &ReplyWriter{
		slab:     make([]byte, slabSize),
		replies:  make([]Reply, 0, maxReplies),
		maxReply: maxReply,
	}
}

// Begin points the writer at the packet about to be served: replies go to p.Src, from p.Dst.
func (w *ReplyWriter) Begin(p *Packet) {
	w.dst = p.Src
	w.src = p.Dst
}

// Room reports whether one more reply of MaxReply bytes is sure to fit.
func (w *ReplyWriter) Room() bool {
	return len(w.replies) < cap(w.replies) && len(w.slab)-w.used >= w.maxReply
}

// MaxReply is the largest reply Write accepts.
func (w *ReplyWriter) MaxReply() int { return w.maxReply }

// AvailableBuffer returns an empty slice over the free part of the slab, at
// most MaxReply bytes in capacity. Append the reply to it and pass the result
// to Write: a reply built in place is queued without a copy.
func (w *ReplyWriter) AvailableBuffer() []byte {
	end := w.used + w.maxReply
	if end > len(w.slab) {
		end = len(w.slab)
	}
	return w.slab[w.used:w.used:end]
}

// Write queues b as a reply to the current packet's sender. It copies b into
// the slab unless b was built in AvailableBuffer. It never keeps b itself.
func (w *ReplyWriter) Write(b []byte) (int, error) {
	if len(b) > w.maxReply {
		return 0, ErrReplyTooLarge
	}
	if len(w.replies) == cap(w.replies) || len(b) > len(w.slab)-w.used {
		return 0, ErrReplyQueueFull
	}
	start := w.used
	if len(b) > 0 && unsafe.SliceData(b) != unsafe.SliceData(w.slab[start:]) {
		copy(w.slab[start:], b)
	}
	w.used += len(b)
	w.replies = append(w.replies, Reply{Data: w.slab[start:w.used:w.used], Dst: w.dst, Src: w.src})
	return len(b), nil
}

// Len returns the number of queued replies.
func (w *ReplyWriter) Len() int { return len(w.replies) }

// Bytes returns the total length of the queued replies.
func (w *ReplyWriter) Bytes() int { return w.used }

// Replies returns the queued replies, oldest first. The slice is the writer's
// own and valid until Reset.
func (w *ReplyWriter) Replies() []Reply { return w.replies }

// Reset drops every queued reply and makes the whole slab free again.
func (w *ReplyWriter) Reset() {
	clear(w.replies) // do not keep stale addresses reachable from the backing array
	w.replies = w.replies[:0]
	w.used = 0
}
