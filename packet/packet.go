package packet

import (
	"errors"
	"net/netip"
	"sync/atomic"
)

// Proto is the transport a Packet arrived on.
type Proto uint8

// Transports.
const (
	UDP Proto = iota + 1
	TCP
)

// String returns the lower-case transport name used in flags and metric labels.
func (p Proto) String() string {
	switch p {
	case UDP:
		return "udp"
	case TCP:
		return "tcp"
	}
	return "unknown"
}

// Packet is one datagram (UDP) or one frame (stream transports).
//
// Data is owned by the shard and valid only until ServePacket returns; a
// handler that needs the bytes later must copy them.
type Packet struct {
	Data  []byte
	Src   netip.AddrPort // sender; IPv4 senders are never IPv4-mapped
	Dst   netip.Addr     // local address the packet arrived on, when known (wildcard listeners)
	Shard int            // index of the shard serving the packet, 0-based within its group
	Proto Proto
	// Peer is, on a TLS connection whose client sent a verified
	// certificate (mutual TLS), that certificate's subject (RFC 2253
	// form, as crypto/x509's Name.String); nil otherwise. Like Data, it is
	// not to be retained or changed.
	Peer []byte
}

// Handler serves one Packet and may queue replies to its sender on w.
// A handler that cannot parse a packet counts it in its own metrics and
// returns nil (nothing is answered); an error is for what went wrong in
// the handler itself, such as a reply that did not fit.
//
// ServePacket runs on the shard's goroutine, one packet at a time, so
// per-shard state needs no locking; it must not block. It must not retain p,
// p.Data or w after it returns, nor change p's fields: the shard sets Src
// and Dst once for the datagrams of one UDP GRO buffer. A returned error is counted by the shard
// (shardd_handler_errors_total) and never logged per packet.
type Handler interface {
	ServePacket(w *ReplyWriter, p *Packet) error
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(w *ReplyWriter, p *Packet) error

// ServePacket calls f(w, p).
func (f HandlerFunc) ServePacket(w *ReplyWriter, p *Packet) error { return f(w, p) }

// Publisher is implemented by handlers that count per packet in plain
// numbers of their own (no atomic operation per packet) and make them
// visible to other goroutines, such as a metrics scrape, in one step.
//
// The shard checks for it once, when it gets the handler, and calls
// Publish after each batch of ServePacket calls, before that batch's
// replies are sent: a client that has a reply finds its request counted,
// as the shard's own counters promise. Publish runs where ServePacket runs
// (the shard's goroutine, or under the same lock on stream transports), so
// it reads the plain counts without synchronisation; readers on other
// goroutines load what it stored atomically.
type Publisher interface {
	Publish()
}

// PublishCount is how Publish stores one count for other goroutines: only
// if it changed, so that the Publish of an idle handler writes to no cache
// line a reader shares.
func PublishCount(dst *atomic.Uint64, v uint64) {
	if dst.Load() != v {
		dst.Store(v)
	}
}

// Errors ReplyWriter.Write returns; a handler passes them on.
var (
	// ErrReplyQueueFull means no more replies can be queued for this batch.
	ErrReplyQueueFull = errors.New("packet: reply queue full")
	// ErrReplyTooLarge means a reply is larger than the space a reply may take.
	ErrReplyTooLarge = errors.New("packet: reply too large")
)
