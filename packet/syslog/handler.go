package syslog

import (
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/packet/sink"
)

// Handler is one shard's syslog handler: it parses each message, formats
// its JSON line and keeps it with the batch's other lines; Publish (the
// shard calls it after each batch) hands them to the shard's sink.Producer
// in one Write and publishes the handler's counts. It never blocks on the
// sink: with the sink's memory spent, the sink drops and counts the lines
// (queue_full). It implements packet.Framer (RFC 6587) for TCP.
//
// It counts each message in plain numbers, as the shard counts datagrams,
// and publishes them for the metrics scrape once per batch
// (packet.Publisher): no atomic operation and no lock per message.
type Handler struct {
	Framing

	_      [64]byte // keep a neighbouring handler's hot fields off these cache lines
	out    sink.Producer
	shard  int
	rec    Record
	origin Origin
	lines  []byte // formatted lines not yet handed to out
	n      int    // how many
	dirty  bool   // c changed since the last Publish
	c      tally[uint64]
	pub    tally[atomic.Uint64] // c as of the last Publish, for the scrape
	_      [64]byte
}

// tally is a handler's counters: plain numbers (T = uint64) where the
// handler counts and the scrape sums, atomic ones (T = atomic.Uint64) where
// Publish stores what the scrape loads.
type tally[T any] struct {
	msgs [numFormats]T // accepted, by format (Invalid = parse errors)
	cut  T             // messages truncated to MaxMessage
}

// keepScratch is the largest line buffer a handler keeps between batches;
// one grown for a longer line is let go after it.
const keepScratch = 1 << 20

// handOff is how many bytes of lines a handler keeps before it hands them
// to the sink without waiting for the end of the batch (a TCP read may
// hold thousands of messages).
const handOff = 64 << 10

// MaxMessage is the longest message a handler formats whole (a TCP frame
// may take up to 16 MiB, and its line six times that). A longer one is cut
// to it (at a UTF-8 character boundary), its record says how many bytes
// were cut (truncated_bytes), and it is counted
// (shardd_syslog_truncated_total). Its line fits in keepScratch.
const MaxMessage = 128 << 10

// ServePacket implements packet.Handler. It never returns an error: a
// message that does not parse is written raw and counted as a parse error.
func (h *Handler) ServePacket(_ *packet.ReplyWriter, p *packet.Packet) error {
	now := time.Now()
	data, cut := p.Data, 0
	if len(data) > MaxMessage {
		k := MaxMessage
		for k > MaxMessage-utf8.UTFMax && !utf8.RuneStart(data[k]) {
			k--
		}
		data, cut = data[:k:k], len(data)-k
		h.c.cut++
	}
	Parse(data, now, &h.rec)
	h.origin = Origin{Received: now, From: p.Src, Shard: h.shard, Proto: p.Proto.String(), Truncated: cut, Peer: p.Peer}
	h.lines = AppendJSON(h.lines, &h.rec, &h.origin)
	h.n++
	h.c.msgs[h.rec.Format]++
	h.dirty = true
	h.rec = Record{} // keep no reference to the packet's memory
	if len(h.lines) >= handOff {
		h.Publish()
	}
	return nil
}

// Publish implements packet.Publisher: it makes the counts of the messages
// served so far visible to the metrics scrape, then hands their lines to
// the sink (so a line written is a message counted). With one writer,
// plain atomic stores suffice, and a word that did not change is not
// stored.
func (h *Handler) Publish() {
	if h.dirty {
		for f := range h.c.msgs {
			packet.PublishCount(&h.pub.msgs[f], h.c.msgs[f])
		}
		packet.PublishCount(&h.pub.cut, h.c.cut)
		h.dirty = false
	}
	if h.n == 0 {
		return
	}
	h.out.Write(h.lines, h.n)
	h.n = 0
	if cap(h.lines) > keepScratch {
		h.lines = make([]byte, 0, 4096)
	}
	h.lines = h.lines[:0]
}

var (
	_ packet.Handler   = (*Handler)(nil)
	_ packet.Framer    = (*Handler)(nil)
	_ packet.Publisher = (*Handler)(nil)
)
