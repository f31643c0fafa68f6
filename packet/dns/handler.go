package dns

import (
	"encoding/binary"
	"strconv"
	"sync/atomic"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

// Sizes of the replies (RFC 1035 4.2.1, RFC 6891 6.2.5, DNS flag day 2020).
const (
	// MaxUDPSize is the largest UDP reply sent and the payload size
	// advertised in OPT: 1232 bytes fit any path MTU of 1280 without
	// fragmentation.
	MaxUDPSize = 1232
	minUDPSize = 512 // without EDNS, and the floor of any advertised size
	headerLen  = 12
	optLen     = 11 // root owner, type, class, TTL, empty rdata (an EDE only goes with no records)
)

// Header bits.
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagCD = 1 << 4
)

// Handler answers DNS queries on one shard (and one transport) from the
// server's current zones. It keeps per-query scratch space and counters, so
// each shard needs its own: Server.NewHandler.
//
// It counts each query in plain numbers, as the shard counts datagrams, and
// publishes them for the metrics scrape once per batch (packet.Publisher):
// no atomic operation per query.
type Handler struct {
	packet.LengthPrefixed // DNS over TCP frames messages with a 2-byte length

	_     [64]byte // keep a neighbouring handler's hot fields off these cache lines
	srv   *Server
	shard int
	dirty uint8                   // bit 1<<transport: counts not yet published
	c     [2]tally[uint64]        // by transport (UDP, TCP): the serving goroutine's own
	pub   [2]tally[atomic.Uint64] // c as of the last Publish, for the scrape
	name  [255]byte               // the query name, lower-cased
	// The reply's COOKIE option: the client cookie and the server cookie.
	cookieOut [clientCookieLen + serverCookieLen]byte
	rrlKey    [2 + 16 + 255]byte // scratch for the rate limiter's bucket key
	key       [2 * 255]byte      // scratch for a name's canonical order key (NSEC)
	ins       *link              // the query-time proof lookup found for the reply, if any
	slips     int                // limited responses since the last slipped one
	rrlClock  batchClock         // the limiter's clock, read once per batch
	unixClock batchClock         // the cookies' clock (seconds), read once per batch
	_         [64]byte
}

// tally is one transport's DNS counters: plain numbers (T = uint64) where
// the handler counts and the scrape sums, atomic ones (T = atomic.Uint64)
// where Publish stores what the scrape loads.
type tally[T any] struct {
	queries   [numQtypeLabels]T
	responses [numRcodes]T
	truncated T
	malformed T
	dropped   [numDropReasons]T
	limited   [numRRLClasses]T // by RRL (UDP only), slipped or not
	slipped   T
}

// Publish makes the counts of the queries served so far visible to the
// metrics scrape (packet.Publisher). The shard calls it after each batch,
// before the batch's replies leave. With one writer, plain atomic stores
// suffice, and a word that did not change is not stored (a store is a
// locked exchange on amd64; most words stay the same from batch to batch).
func (h *Handler) Publish() {
	for p := range h.c {
		if h.dirty&(1<<p) == 0 {
			continue
		}
		c, pub := &h.c[p], &h.pub[p]
		store(pub.queries[:], c.queries[:])
		store(pub.responses[:], c.responses[:])
		packet.PublishCount(&pub.truncated, c.truncated)
		packet.PublishCount(&pub.malformed, c.malformed)
		store(pub.dropped[:], c.dropped[:])
		store(pub.limited[:], c.limited[:])
		packet.PublishCount(&pub.slipped, c.slipped)
	}
	h.dirty = 0
	h.rrlClock.uses, h.unixClock.uses = 0, 0 // a new batch reads the clocks again
}

func store(dst []atomic.Uint64, src []uint64) {
	for i, v := range src {
		packet.PublishCount(&dst[i], v)
	}
}

var _ packet.Publisher = (*Handler)(nil)

// dropReason is why a message gets no reply; it indexes counters.dropped,
// and its String is the reason label of shardd_dns_dropped_total.
type dropReason uint8

const (
	dropResponse dropReason = iota // QR set: a reply is never answered (no reflection loops)
	dropShort                      // shorter than a header: no ID to answer with
)

const numDropReasons = int(dropShort) + 1

func (r dropReason) String() string {
	switch r {
	case dropResponse:
		return "response"
	case dropShort:
		return "short"
	}
	return "dropReason(" + strconv.Itoa(int(r)) + ")"
}

const numRcodes = 24

// query is what ServePacket reads from a query before answering.
type query struct {
	id      [2]byte
	flags   uint16
	qend    int // end of the question section; 0 when there is none to echo
	nameLen int
	qtype   uint16
	qclass  uint16
	edns    bool
	udpSize int
	version uint8
	do      bool
	// The COOKIE option: where its data is in the message, and what it says.
	cookieOff, cookieLen int
	cookie               cookieState
}

// ServePacket answers one query. Malformed queries get FORMERR when they
// carry an ID to answer; replies and runts are dropped and counted.
func (h *Handler) ServePacket(w *packet.ReplyWriter, p *packet.Packet) error {
	tr := 0
	if p.Proto == packet.TCP {
		tr = 1
	}
	c := &h.c[tr]
	h.dirty |= 1 << tr
	m := p.Data
	if len(m) < headerLen {
		c.dropped[dropShort]++
		c.malformed++
		return nil
	}
	var q query
	q.id = [2]byte{m[0], m[1]}
	q.flags = binary.BigEndian.Uint16(m[2:])
	if q.flags&flagQR != 0 {
		c.dropped[dropResponse]++
		return nil
	}
	rcode := h.parse(m, &q)
	if rcode == mdns.RcodeFormatError {
		c.malformed++
	}
	if q.qend > 0 {
		c.queries[qtypeLabel(q.qtype)]++
	}
	if q.cookie == cookieClient {
		q.cookie = h.cookie(m, q.cookieOff, q.cookieLen, p.Src.Addr())
	}
	if rcode == rcodeNotify {
		return h.serveNotify(w, p, &q, c)
	}
	t, rcode := h.answer(&q, p, rcode)
	limit := replyLimit(&q, p.Proto, w.MaxReply())
	b, tc := h.build(w.AvailableBuffer(), m, &q, rcode, t, limit, 0)
	if p.Proto == packet.UDP && h.srv.rrl != nil {
		var v rrlVerdict
		switch b, rcode, v = h.rateLimit(b, m, &q, rcode, t, limit, p.Src.Addr()); v {
		case rrlDrop:
			return nil
		case rrlSlip:
			tc = false // truncated by the limiter, not for its size
		}
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	if tc {
		c.truncated++
	}
	c.responses[rcode]++
	return nil
}

// answer is the template of q's reply and its rcode: the zone's answer,
// or for an IXFR the shards do not transfer, the SOA an allowed source
// gets over UDP (ixfrOverUDP); nil with the parse's rcode otherwise.
func (h *Handler) answer(q *query, p *packet.Packet, rcode int) (*template, int) {
	h.ins = nil
	switch {
	case rcode == mdns.RcodeSuccess:
		return h.lookup(q)
	case q.qtype == mdns.TypeIXFR:
		return h.ixfrOverUDP(q, p, rcode)
	}
	return nil, rcode
}

// replyLimit is the largest reply q may get over proto.
func replyLimit(q *query, proto packet.Proto, maxReply int) int {
	limit := minUDPSize
	if q.edns {
		limit = min(max(q.udpSize, minUDPSize), MaxUDPSize)
	}
	if proto == packet.TCP {
		limit = 65535
	}
	return min(limit, maxReply)
}

// parse reads the header, question and OPT record of m into q and returns
// the rcode to answer with when the query cannot be looked up.
func (h *Handler) parse(m []byte, q *query) int {
	qd := binary.BigEndian.Uint16(m[4:])
	if qd == 1 {
		h.readQuestion(m, q)
	}
	if q.qend > 0 && !q.readRecords(m) {
		return mdns.RcodeFormatError
	}
	if q.cookie == cookieMalformed {
		q.cookie = cookieNone
		return mdns.RcodeFormatError // RFC 7873 5.2.2: no cookie to answer with
	}
	if !h.srv.cookiesOn {
		q.cookie = cookieNone
	}
	if q.flags>>11&0xF == mdns.OpcodeNotify && h.srv.sec != nil {
		return rcodeNotify
	}
	return q.rcode(qd)
}

// readQuestion reads the question after the header into q, and its name
// into h.name. If it is malformed, q.qend stays 0.
func (h *Handler) readQuestion(m []byte, q *query) {
	n, ok := h.readName(m, headerLen)
	if end := headerLen + n + 4; ok && end <= len(m) {
		q.nameLen = n
		q.qtype = binary.BigEndian.Uint16(m[end-4:])
		q.qclass = binary.BigEndian.Uint16(m[end-2:])
		q.qend = end
	}
}

// readRecords reads the records after the question into q: it steps over
// the answer and authority records (a query should have none) and reads the
// OPT record from the additional section. It reports false when a record
// is malformed, an OPT is misplaced, or bytes follow the last record.
func (q *query) readRecords(m []byte) bool {
	an := binary.BigEndian.Uint16(m[6:])
	ns := binary.BigEndian.Uint16(m[8:])
	ar := binary.BigEndian.Uint16(m[10:])
	off := q.qend
	var ok bool
	var rtype uint16
	for i := 0; i < int(an)+int(ns); i++ {
		if off, rtype, ok = skipRR(m, off); !ok || rtype == mdns.TypeOPT {
			return false // OPT belongs in the additional section only
		}
	}
	for i := 0; i < int(ar); i++ {
		start := off
		if off, rtype, ok = skipRR(m, off); !ok {
			return false
		}
		if rtype != mdns.TypeOPT {
			continue // TSIG and others are not supported and ignored
		}
		// One OPT, owned by the root (RFC 6891 6.1.1).
		if q.edns || m[start] != 0 {
			return false
		}
		q.edns = true
		q.udpSize = int(binary.BigEndian.Uint16(m[start+3:]))
		q.version = m[start+6]
		q.do = m[start+7]&0x80 != 0
		rdata := start + optLen // after the root owner, type, class, TTL and rdlength
		if o, n, st := findCookie(m[rdata:off]); st != cookieNone {
			q.cookieOff, q.cookieLen, q.cookie = rdata+o, n, st
		}
	}
	return off == len(m) // no bytes after the last record
}

// rcode is the rcode to answer a well-formed message of qd questions with
// when it cannot be looked up, else RcodeSuccess.
func (q *query) rcode(qd uint16) int {
	opcode := (q.flags >> 11) & 0xF
	switch {
	case opcode != 0:
		return mdns.RcodeNotImplemented
	case qd != 1 || q.qend == 0:
		return mdns.RcodeFormatError
	case q.edns && q.version != 0:
		return mdns.RcodeBadVers
	case q.qclass != mdns.ClassINET && q.qclass != mdns.ClassANY:
		return mdns.RcodeRefused
	case q.qtype == mdns.TypeAXFR || q.qtype == mdns.TypeIXFR:
		return mdns.RcodeRefused // zone transfers are served by a TransferServer (IXFR over UDP: ixfrOverUDP)
	case q.qtype == 0:
		return mdns.RcodeNotImplemented // reserved (RFC 6895 3.1), as Knot DNS answers
	}
	return mdns.RcodeSuccess
}

// readName checks the uncompressed name at m[off:] and copies it, lower
// case, into h.name. A question name has nothing before it to point at, so a
// compression pointer is malformed.
func (h *Handler) readName(m []byte, off int) (int, bool) {
	n := 0
	for {
		if off+n >= len(m) {
			return 0, false
		}
		l := int(m[off+n])
		if l == 0 {
			h.name[n] = 0
			return n + 1, true
		}
		if l > 63 || n+1+l+1 > len(h.name) || off+n+1+l > len(m) {
			return 0, false
		}
		h.name[n] = byte(l)
		for i := 1; i <= l; i++ {
			b := m[off+n+i]
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			h.name[n+i] = b
		}
		n += 1 + l
	}
}

// skipRR steps over one resource record at m[off:] and returns where the
// next begins and the record's type.
func skipRR(m []byte, off int) (int, uint16, bool) {
	for {
		if off >= len(m) {
			return 0, 0, false
		}
		l := int(m[off])
		if l == 0 {
			off++
			break
		}
		if l&0xC0 == 0xC0 {
			off += 2
			break
		}
		if l > 63 {
			return 0, 0, false
		}
		off += 1 + l
	}
	if off+10 > len(m) {
		return 0, 0, false
	}
	rtype := binary.BigEndian.Uint16(m[off:])
	rdlen := int(binary.BigEndian.Uint16(m[off+8:]))
	off += 10 + rdlen
	if off > len(m) {
		return 0, 0, false
	}
	return off, rtype, true
}

// lookup finds the template answering q: the zone that encloses the name
// most closely, then the name's node or its closest encloser.
func (h *Handler) lookup(q *query) (*template, int) {
	name := h.name[:q.nameLen]
	z := h.srv.zones.Load().enclosing(name, q.qtype)
	if z == nil {
		return nil, mdns.RcodeRefused // not ours: no zone encloses it
	}
	prev := 0 // the label before off: the next closer name's (NSEC3)
	for off := 0; ; prev, off = off, off+int(name[off])+1 {
		n := z.byWire[string(name[off:])]
		if n == nil {
			continue // the apex is always found, so the walk ends
		}
		a := n.forDO(q.do)
		if off == 0 {
			if t := a.exact[q.qtype]; t != nil {
				return t, t.rcode
			}
			return a.exactDefault, a.exactDefault.rcode
		}
		var t *template
		switch {
		case n.cut != nil:
			t = n.cut.forDO(q.do).synthDefault
		case n.wild != nil:
			w := n.wild.forDO(q.do)
			if t = w.synth[q.qtype]; t == nil {
				t = w.synthDefault
			}
		case a.nxdomain != nil:
			t = a.nxdomain
		default:
			t = z.nxdomain
		}
		if t.deny != denyNone {
			h.ins = h.proof(t, name, name[prev:])
		}
		return t, t.rcode
	}
}

// forDO is n's answers for a query with the DO bit (do) or without.
func (n *node) forDO(do bool) *answers {
	if do {
		return n.do
	}
	return &n.answers
}

// enclosing is the zone that encloses the lower-case wire-format name most
// closely, nil if none does; for DS at a zone's apex, its parent zone if
// it is served here too (DS is the parent's data: RFC 4035 3.1.4.1).
func (zs *Zones) enclosing(name []byte, qtype uint16) *Zone {
	var z *Zone
	for off := 0; ; off += int(name[off]) + 1 {
		if c := zs.byOrigin[string(name[off:])]; c != nil {
			z = c
			if off > 0 || qtype != mdns.TypeDS || name[0] == 0 {
				return z
			}
		}
		if name[off] == 0 {
			return z
		}
	}
}

// proof is the link of t's chain that proves the query name does not
// exist: NSEC, the one covering name; NSEC3, the one covering the hash of
// the next closer name nc (RFC 5155 7.2.1). Nil when t has that record
// already. It allocates nothing.
func (h *Handler) proof(t *template, name, nc []byte) *link {
	c := t.chain
	var l *link
	if c.kind == denyNSEC {
		l = c.cover(appendCanonicalKey(h.key[:0], name))
	} else {
		hash := c.hash(nc)
		l = c.cover(hash[:])
	}
	if t.has(l) {
		return nil
	}
	return l
}

// build appends to b the answer to q: header (with extra flags), the
// query's own question bytes, then the template's records if they fit in
// limit, else as many as fit (t.fit). It reports whether TC was set because
// the answer did not fit.
func (h *Handler) build(b, m []byte, q *query, rcode int, t *template, limit int, extra uint16) ([]byte, bool) {
	qlen := 0
	if q.qend > 0 {
		qlen = q.qend - headerLen
	}
	size := headerLen + qlen
	if q.edns {
		size += optLen
		if q.cookie != cookieNone {
			size += cookieOptLen
		}
	}
	var counts [3]uint16
	var c cut // of the template's body to send
	var ins proof
	flags := flagQR | q.flags&(0xF<<11|flagRD|flagCD) | uint16(rcode&0xF) | extra
	tc := false
	if t != nil {
		if t.aa {
			flags |= flagAA
		}
		if h.ins != nil {
			ins = proofAt(h.ins, h.name[:q.nameLen], t.chain.originLen, headerLen+qlen+int(t.denyAt))
		}
		if c, counts, tc = t.fit(limit-size, ins); tc {
			flags |= flagTC
		}
	}
	if q.edns {
		counts[2]++
	}
	qd := uint16(0)
	if qlen > 0 {
		qd = 1
	}
	b = append(b, q.id[0], q.id[1], byte(flags>>8), byte(flags),
		byte(qd>>8), byte(qd), byte(counts[0]>>8), byte(counts[0]),
		byte(counts[1]>>8), byte(counts[1]), byte(counts[2]>>8), byte(counts[2]))
	b = append(b, m[headerLen:headerLen+qlen]...)
	if t != nil {
		b = t.appendBody(b, c, q.nameLen, ins)
	}
	if q.edns {
		b = h.appendOPT(b, q, rcode, extendedError(q, rcode, t))
	}
	return b, tc
}

// appendOPT appends the reply's OPT record (RFC 6891): the payload size
// sent, the rcode's upper bits, the DO bit copied from the query (RFC 3225
// 3), the COOKIE option when the query had one (RFC 7873 5.2) and, with
// ede not 0, that Extended DNS Error (RFC 8914).
func (h *Handler) appendOPT(b []byte, q *query, rcode int, ede uint16) []byte {
	do := byte(0)
	if q.do {
		do = 0x80
	}
	rdlen := 0
	if ede != 0 {
		rdlen += 6
	}
	if q.cookie != cookieNone {
		rdlen += cookieOptLen
	}
	b = append(b, 0, 0, byte(mdns.TypeOPT), byte(MaxUDPSize>>8), byte(MaxUDPSize&0xFF), byte(rcode>>4), 0, do, 0, 0, byte(rdlen))
	if q.cookie != cookieNone {
		b = append(b, 0, byte(mdns.EDNS0COOKIE), 0, byte(len(h.cookieOut)))
		b = append(b, h.cookieOut[:]...)
	}
	if ede != 0 {
		b = append(b, 0, byte(mdns.EDNS0EDE), 0, 2, byte(ede>>8), byte(ede))
	}
	return b
}
