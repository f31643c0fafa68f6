package syslog

import (
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/cpu"

	"github.com/shardd/shardd/packet"
)

// Handler is one shard's side of a Sink: it parses each message, formats
// its JSON line and appends it to the batch it is filling. It never blocks
// on the sink: with the queue's memory spent it drops the message and
// counts it (queue_full). It implements packet.Framer (RFC 6587) for TCP.
type Handler struct {
	Framing

	s       *Sink
	shard   int
	rec     Record
	origin  Origin
	scratch []byte

	mu  sync.Mutex // guards cur against the writer's collect
	cur *batch

	_       cpu.CacheLinePad
	msgs    [numFormats]atomic.Uint64 // accepted, by format (Invalid = parse errors)
	dropped [numDropReasons]atomic.Uint64
	written atomic.Uint64 // by the writer
	cut     atomic.Uint64 // messages truncated to MaxMessage
	_       cpu.CacheLinePad
}

// keepScratch is the largest formatting buffer a handler keeps between
// messages; one grown for a longer line is let go after it.
const keepScratch = 1 << 20

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
		h.cut.Add(1)
	}
	Parse(data, now, &h.rec)
	h.origin = Origin{Received: now, From: p.Src, Shard: h.shard, Proto: p.Proto.String(), Truncated: cut, Peer: p.Peer}
	line := AppendJSON(h.scratch[:0], &h.rec, &h.origin)
	h.msgs[h.rec.Format].Add(1)
	h.enqueue(line)
	if cap(line) > keepScratch {
		line = make([]byte, 0, 4096)
	}
	h.scratch = line[:0]
	h.rec = Record{} // keep no reference to the packet's memory
	return nil
}

func (h *Handler) enqueue(line []byte) {
	s := h.s
	h.mu.Lock()
	defer h.mu.Unlock()
	if b := h.cur; b != nil && len(b.buf)+len(line) > cap(b.buf) {
		h.cur = nil
		s.submit(b)
	}
	if h.cur == nil {
		if h.cur = s.take(h, len(line)); h.cur == nil {
			h.dropped[DropQueueFull].Add(1)
			return
		}
	}
	b := h.cur
	b.buf = append(b.buf, line...)
	b.n++
	if cap(b.buf)-len(b.buf) < 1024 || b.big {
		h.cur = nil
		s.submit(b)
	}
}

var _ packet.Handler = (*Handler)(nil)
var _ packet.Framer = (*Handler)(nil)
