package dns

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"
)

// template is a packed answer: everything after the question section, and
// the header fields that go with it. A query's reply is its own header and
// question (the exact bytes it sent: 0x20 case survives), then body.
type template struct {
	rcode  int
	aa     bool
	counts [3]uint16 // answer, authority, additional
	body   []byte
	// essential is how much of body must fit for a reply without TC, and
	// essentialAR how many additional records that part holds: the
	// answer, authority and needed glue (RFC 1035 7.3, RFC 9471).
	// extraEnds are where each helpful additional record after it ends;
	// as many as fit are sent.
	essential   int
	essentialAR uint16
	extraEnds   []uint16
	// units are where each RRset of the essential part ends, but the
	// last: when it does not fit, the RRsets that fit go (truncate.go).
	units []unit
	// extraSigs is how many of the last extras are RRSIGs: they go all
	// or none (as Knot DNS sends them).
	extraSigs int
	// Templates for query names of any length (wildcard synthesis, names
	// below a cut, NXDOMAIN) were packed after a question name of qlen
	// bytes; the compression pointers at fixups move by the query name's
	// extra length, except those to offset 12 (the query name itself).
	qlen   int
	fixups []uint16
	// rrl is what the rate limiter keys this answer's bucket by.
	rrl *rrlTag
	// A DNSSEC proof that depends on the query name (deny: NSEC or NSEC3)
	// goes at body offset denyAt, found in chain at query time.
	deny      denial
	denyAt    uint16 // where the proof's NSEC or NSEC3 record goes
	denySigAt uint16 // and where its RRSIGs go
	chain     *chain
	links     []*link // the chain's records already in body
}

// prepare packs every answer the zone can give.
func (z *Zone) prepare() error {
	z.byWire = make(map[string]*node, len(z.nodes))
	origin, err := wireName(z.Origin)
	if err != nil {
		return fmt.Errorf("%s: %v", z.Origin, err)
	}
	plain := &rrlTag{zone: origin}
	records := 0 // the records' bytes, uncompressed
	z.eachRecord(func(rr mdns.RR) { records += mdns.Len(rr) })
	budget, used := answerBudget+answerFactor*records, 0
	for name, n := range z.nodes {
		wire, err := wireName(name)
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		z.byWire[string(wire)] = n
		if err := z.prepareNode(n, name, wire, plain); err != nil {
			return err
		}
		if used += n.answerBytes(); used > budget {
			return fmt.Errorf("its answers take more than %d MiB, %d times its records' %d KiB and more (e.g. at %s: many names whose answers copy a large RRset, as CNAMEs to it; split that RRset or point fewer names at it)",
				budget>>20, answerFactor, records>>10, name)
		}
	}
	z.nxdomain, err = packAnyName(&result{rcode: mdns.RcodeNameError, aa: true, authority: []mdns.RR{z.negativeSOA()}, deny: denyPoint{at: -1}}, "*."+z.Origin, 0)
	if z.nxdomain != nil {
		z.nxdomain.rrl = plain
	}
	return err
}

// A zone's packed answers may take answerBudget bytes plus answerFactor
// times its records' own: every answer is packed at load, and an answer
// copies the RRsets it holds, so a name can cost far more than its
// records (5,000 CNAMEs to one RRset of 2,000 records: 129 KB of zone
// text, 164 MB of answers). Ordinary zones stay well below (a signed
// zone's negative answers carry a few proofs per name).
const (
	answerBudget = 64 << 20
	answerFactor = 64
)

// answerBytes is the size of n's packed answers, with the DO bit and
// without.
func (n *node) answerBytes() int {
	size := n.answers.bytes()
	if n.do != nil && n.do != &n.answers {
		size += n.do.bytes()
	}
	return size
}

func (a *answers) bytes() int {
	size := 0
	for _, m := range []map[uint16]*template{a.exact, a.synth} {
		for _, t := range m {
			size += len(t.body)
		}
	}
	for _, t := range []*template{a.exactDefault, a.synthDefault, a.nxdomain} {
		if t != nil {
			size += len(t.body)
		}
	}
	return size
}

// prepareNode packs the answers of the node n (named name, wire in wire
// format), without and with the DO bit (the same ones when the zone is not
// signed), and tags them for the rate limiter: referrals by their
// delegation, wildcard syntheses by their owner, the rest by the zone (plain).
func (z *Zone) prepareNode(n *node, name string, wire []byte, plain *rrlTag) error {
	var referral *rrlTag
	if n.cut != nil {
		cut, _ := wireName(n.cut.name) // packed without error as a node name already
		referral = &rrlTag{zone: plain.zone, owner: cut, referral: true}
	}
	tags := tagger{plain: plain, referral: referral, wild: &rrlTag{zone: plain.zone, owner: wire, wildcard: true}}
	if err := z.prepareAnswers(&n.answers, n, name, mode{}, tags); err != nil {
		return err
	}
	n.do = &n.answers
	if !z.signed {
		return nil
	}
	n.do = &answers{}
	return z.prepareAnswers(n.do, n, name, mode{do: true}, tags)
}

// tagger tags templates for the rate limiter.
type tagger struct{ plain, referral, wild *rrlTag }

func (g tagger) tag(t *template) *template {
	if !t.aa && g.referral != nil {
		t.rrl = g.referral
	} else {
		t.rrl = g.plain
	}
	return t
}

// prepareAnswers packs into a the answers of n, named name, in mode m.
func (z *Zone) prepareAnswers(a *answers, n *node, name string, m mode, tags tagger) error {
	var err error
	if a.exactDefault, err = z.pack(name, mdns.TypeNone, m); err != nil {
		return err
	}
	tags.tag(a.exactDefault)
	a.exact = map[uint16]*template{}
	for _, qt := range z.qtypesFor(n) {
		t, err := z.pack(name, qt, m)
		if err != nil {
			return err
		}
		if !t.equal(a.exactDefault) { // most names answer CNAME, DS and the like with plain NODATA
			a.exact[qt] = tags.tag(t)
		}
	}
	m.vary = true
	switch {
	case n.cut == n:
		m.vary = false // a referral is the same for every name below the cut
		if a.synthDefault, err = z.packVary("*."+name, "*."+name, mdns.TypeNone, m); err != nil {
			return err
		}
		a.synthDefault.rrl = tags.referral
	case isWildcard(name):
		return z.prepareWildcard(a, n, name, m, tags.wild)
	case m.do && z.chain != nil && n.cut == nil && n.wild == nil && len(mustWire(name))+2 <= 255:
		// NXDOMAIN below n as the closest encloser: the wildcard proof is n's.
		if a.nxdomain, err = z.packVary("*."+name, "*."+name, mdns.TypeNone, m); err != nil {
			return err
		}
		a.nxdomain.rrl = tags.plain
	}
	return nil
}

// pack packs the answer to exactly name/qtype.
func (z *Zone) pack(name string, qtype uint16, m mode) (*template, error) {
	return packExact(z.resolve(name, qtype, m), name, qtype)
}

// packVary packs the answer for the names that placeholder stands for
// (its first label replaced by any labels), resolved as name.
func (z *Zone) packVary(name, placeholder string, qtype uint16, m mode) (*template, error) {
	if name != placeholder {
		m.owner = placeholder
	}
	r := z.resolve(name, qtype, m)
	proofRoom := 0 // the most a query-time proof inserts
	if m.do && z.chain != nil {
		proofRoom = z.chain.maxWire
	}
	t, err := packAnyName(r, placeholder, proofRoom)
	if t != nil && t.deny != denyNone {
		t.chain, t.links = z.chain, r.links
	}
	return t, err
}

// prepareWildcard packs into a the answers the wildcard node n synthesizes,
// tagged wild for the rate limiter.
func (z *Zone) prepareWildcard(a *answers, n *node, name string, m mode, wild *rrlTag) error {
	a.synth = map[uint16]*template{}
	// The wildcard's own records (its NSEC) must not point at the query
	// name: the placeholder differs from it.
	placeholder := z.wildPlaceholder(name)
	for _, qt := range z.qtypesFor(n) {
		t, err := z.packVary(name, placeholder, qt, m)
		if err != nil {
			return err
		}
		t.rrl = wild
		a.synth[qt] = t
	}
	var err error
	if a.synthDefault, err = z.packVary(name, placeholder, mdns.TypeNone, m); err != nil {
		return err
	}
	a.synthDefault.rrl = wild
	return nil
}

// wildPlaceholder is the name the templates of the wildcard name are
// packed for: its "*" replaced by a one-byte label no node of z has, so the
// wire length stays (the name may be 255 bytes long).
func (z *Zone) wildPlaceholder(name string) string {
	for b := 0; ; b++ {
		p := fmt.Sprintf("\\%03d", b) + name[1:]
		if z.nodes[p] == nil || b == 255 {
			return p
		}
	}
}

func isWildcard(name string) bool { return len(name) > 2 && name[:2] == "*." }

func (t *template) equal(u *template) bool {
	return t.rcode == u.rcode && t.aa == u.aa && t.counts == u.counts && t.essential == u.essential &&
		t.essentialAR == u.essentialAR && bytes.Equal(t.body, u.body) && t.qlen == u.qlen && slices.Equal(t.units, u.units) &&
		t.deny == u.deny && t.denyAt == u.denyAt && t.denySigAt == u.denySigAt
}

// wireName packs a name uncompressed.
func wireName(name string) ([]byte, error) {
	b := make([]byte, 256)
	n, err := mdns.PackDomainName(name, b, 0, nil, false)
	return b[:n], err
}

// packMsg packs r after a question for qname, compressed as Knot DNS
// compresses it (knotpack.go), and returns the template, whose body is
// everything after the question.
func packMsg(r *result, qname string, qtype uint16) (*template, error) {
	wq, err := wireName(qname)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", qname, err)
	}
	full, err := packKnot(r, qname, qtype)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %v", qname, mdns.TypeToString[qtype], err)
	}
	qend := headerLen + len(wq) + 4
	nExtra := len(r.glue) + len(r.extra)
	t := &template{
		rcode:       r.rcode,
		aa:          r.aa,
		counts:      [3]uint16{uint16(len(r.answer)), uint16(len(r.authority)), uint16(nExtra)},
		body:        bytes.Clone(full[qend:]),
		essentialAR: uint16(len(r.glue)),
	}
	// Record boundaries: compression only points backwards, so any prefix
	// of whole records is a valid message on its own.
	ends, ptrs, ok := walkRecords(full, qend)
	if !ok || len(ends) != len(r.answer)+len(r.authority)+nExtra {
		return nil, fmt.Errorf("%s/%s: internal error: cannot walk the packed records", qname, mdns.TypeToString[qtype])
	}
	t.essential = len(t.body)
	if nEss := len(r.answer) + len(r.authority) + len(r.glue); nEss > 0 {
		t.essential = ends[nEss-1] - qend
	} else if len(ends) > 0 {
		t.essential = 0
	}
	for _, e := range ends[len(ends)-len(r.extra):] {
		t.extraEnds = append(t.extraEnds, uint16(e-qend))
	}
	t.setDeny(r, func(i int) int { return ends[i] - qend })
	t.setUnits(r, func(i int) int { return ends[i] - qend })
	t.extraSigs = countSigs(r.extra, true)
	for _, p := range ptrs {
		t.fixups = append(t.fixups, uint16(p-qend))
	}
	return t, nil
}

// packExact packs r as the reply to exactly qname: its names may point
// anywhere into the question, whose length is fixed for this name.
func packExact(r *result, qname string, qtype uint16) (*template, error) {
	t, err := packMsg(r, qname, qtype)
	if t != nil {
		t.fixups = nil
	}
	return t, err
}

// packAnyName packs r for query names of any length that end like
// placeholder after its first label ("*"): records owned by placeholder
// become pointers to the query name. The result is checked by building a
// reply for a longer name and parsing it; if pointers cannot be moved
// safely (a body past 16 KiB with the longest name and proofRoom bytes of
// query-time proof inserted), names are written in full instead.
func packAnyName(r *result, placeholder string, proofRoom int) (*template, error) {
	t, err := packMsg(r, placeholder, mdns.TypeNone)
	if err != nil {
		return nil, err
	}
	wq, _ := wireName(placeholder)
	t.qlen = len(wq)
	if headerLen+t.qlen+4+len(t.body)+255+proofRoom < 0x3FFF && t.check(r, placeholder) == nil {
		return t, nil
	}
	return packUncompressed(r, placeholder)
}

// check builds the reply for a query name 61 bytes longer than the
// placeholder and compares what a parser reads with r.
func (t *template) check(r *result, placeholder string) error {
	off, _ := mdns.NextLabel(placeholder, 0)
	long := "x23456789012345678901234567890123456789012345678901234567890ab." + placeholder[off:]
	wq, err := wireName(long)
	if err != nil {
		return nil // too long to ask: nothing to check
	}
	msg := []byte{0, 0, 0x84, 0, 0, 1, byte(t.counts[0] >> 8), byte(t.counts[0]), byte(t.counts[1] >> 8), byte(t.counts[1]), byte(t.counts[2] >> 8), byte(t.counts[2])}
	msg = append(msg, wq...)
	msg = append(msg, 0, 0, 0, 1)
	msg = t.appendBody(msg, t.whole(), len(wq), proof{})
	m := new(mdns.Msg)
	if err := m.Unpack(msg); err != nil {
		return err
	}
	got := append(append(append([]mdns.RR(nil), m.Answer...), m.Ns...), m.Extra...)
	want := append(append(append(append([]mdns.RR(nil), r.answer...), r.authority...), r.glue...), r.extra...)
	if len(got) != len(want) {
		return fmt.Errorf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		w := mdns.Copy(want[i])
		if w.Header().Name == placeholder {
			w.Header().Name = long
		}
		if !strings.EqualFold(got[i].String(), w.String()) {
			return fmt.Errorf("record %d: %s, want %s", i, got[i], w)
		}
	}
	return nil
}

// appendBody appends the body as c cuts it for a query name of qlen wire
// bytes, moving compression pointers as the name's length asks, with ins (a
// query-time proof: whole records, uncompressed) inserted as c says: its
// record at denyAt, its signatures at denySigAt (Knot DNS's order: a
// section's RRSIGs follow all its RRsets); the pointers to the records after
// either move too.
func (t *template) appendBody(b []byte, c cut, qlen int, ins proof) []byte {
	start, n := len(b), c.n
	at1, at2 := n, n
	rr, sigs := 0, 0 // their lengths
	if ins.l != nil {
		at1, at2 = min(int(t.denyAt), n), min(int(t.denySigAt), n)
		if c.rr {
			rr = ins.rrLen()
		}
		if c.sigs {
			sigs = len(ins.sigs())
		}
	}
	b = append(b, t.body[:at1]...)
	if rr > 0 {
		b = ins.appendRR(b)
	}
	b = append(b, t.body[at1:at2]...)
	if sigs > 0 {
		b = append(b, ins.sigs()...)
	}
	b = append(b, t.body[at2:n]...)
	if ins.l != nil { // the query name ends with the zone's origin
		ins.patchOrigin(b, start+at1, start+at2+rr, headerLen+qlen-t.chain.originLen, c.rr, c.sigs)
	}
	if t.qlen == 0 || (qlen == t.qlen && ins.l == nil) {
		return b
	}
	t.movePointers(b[start:], n, qlen-t.qlen, at1, at2, rr, sigs)
	return b
}

// movePointers moves the compression pointers in body, the first n bytes
// of t's body as appended for a query name delta bytes longer than t's,
// with rr bytes of a proof inserted at body offset at1 and sigs at at2.
func (t *template) movePointers(body []byte, n, delta, at1, at2, rr, sigs int) {
	base := headerLen + t.qlen + 4 // where the body starts in the template's message
	shift := func(off int) int {   // how far body offset off moves
		switch {
		case off >= at2:
			return rr + sigs
		case off >= at1:
			return rr
		}
		return 0
	}
	for _, f := range t.fixups {
		if int(f) >= n {
			break
		}
		p := int(f) + shift(int(f))
		ptr := int(body[p]&0x3F)<<8 | int(body[p+1])
		if ptr == headerLen {
			continue
		}
		if ptr >= base {
			ptr += shift(ptr - base)
		}
		ptr += delta
		body[p], body[p+1] = 0xC0|byte(ptr>>8), byte(ptr)
	}
}

// walkRecords steps over the records of a packed message from off to its
// end and returns where each record ends and where each compression
// pointer sits (in owner names and in the rdata names the packer
// compresses: RFC 3597 4).
func walkRecords(m []byte, off int) (ends, ptrs []int, ok bool) {
	name := func(off int) (int, bool) {
		for off < len(m) {
			l := int(m[off])
			switch {
			case l == 0:
				return off + 1, true
			case l&0xC0 == 0xC0:
				ptrs = append(ptrs, off)
				return off + 2, true
			case l > 63:
				return 0, false
			}
			off += 1 + l
		}
		return 0, false
	}
	for off < len(m) {
		if off, ok = name(off); !ok || off+10 > len(m) {
			return nil, nil, false
		}
		rtype := int(m[off])<<8 | int(m[off+1])
		rdlen := int(m[off+8])<<8 | int(m[off+9])
		rd := off + 10
		end := rd + rdlen
		switch rtype {
		case int(mdns.TypeNS), int(mdns.TypeCNAME), int(mdns.TypePTR), int(mdns.TypeMB), int(mdns.TypeMD), int(mdns.TypeMF), int(mdns.TypeMG), int(mdns.TypeMR):
			_, ok = name(rd)
		case int(mdns.TypeMX):
			_, ok = name(rd + 2)
		case int(mdns.TypeSOA), int(mdns.TypeMINFO):
			var next int
			if next, ok = name(rd); ok {
				_, ok = name(next)
			}
		}
		if !ok || end > len(m) {
			return nil, nil, false
		}
		off = end
		ends = append(ends, end)
	}
	return ends, ptrs, true
}

// packUncompressed packs r so it follows a question of any length: an owner
// equal to qname becomes a pointer to the question name, every other name
// is written in full.
func packUncompressed(r *result, qname string) (*template, error) {
	var body []byte
	b := make([]byte, mdns.MaxMsgSize)
	var err error
	var ends []uint16
	put := func(rrs []mdns.RR) {
		for _, rr := range rrs {
			if err != nil {
				return
			}
			h := rr.Header()
			if h.Name == qname {
				body = append(body, 0xC0, 12)
			} else {
				var off int
				if off, err = mdns.PackDomainName(h.Name, b, 0, nil, false); err != nil {
					err = fmt.Errorf("%s: %v", h.Name, err)
					return
				}
				body = append(body, b[:off]...)
			}
			cp := mdns.Copy(rr)
			cp.Header().Name = "."
			var off int
			if off, err = mdns.PackRR(cp, b, 0, nil, false); err != nil {
				err = fmt.Errorf("%s: %v", rr, err)
				return
			}
			body = append(body, b[1:off]...) // skip the root owner
			ends = append(ends, uint16(len(body)))
		}
	}
	put(r.answer)
	put(r.authority)
	put(r.glue)
	essential := len(body)
	put(r.extra)
	if err != nil {
		return nil, err
	}
	t := &template{
		rcode:       r.rcode,
		aa:          r.aa,
		counts:      [3]uint16{uint16(len(r.answer)), uint16(len(r.authority)), uint16(len(r.glue) + len(r.extra))},
		body:        body,
		essential:   essential,
		essentialAR: uint16(len(r.glue)),
		extraEnds:   ends[len(ends)-len(r.extra):],
	}
	t.setDeny(r, func(i int) int { return int(ends[i]) })
	t.setUnits(r, func(i int) int { return int(ends[i]) })
	t.extraSigs = countSigs(r.extra, true)
	return t, nil
}

// setDeny places r's query-time proof in t's body; end(i) is where record
// i of the body ends.
func (t *template) setDeny(r *result, end func(int) int) {
	if r.deny.at < 0 {
		return
	}
	t.deny = r.deny.kind
	if i := len(r.answer) + r.deny.at; i > 0 {
		t.denyAt = uint16(end(i - 1))
	}
	if i := len(r.answer) + r.deny.sigAt; i > 0 {
		t.denySigAt = uint16(end(i - 1))
	}
}

// qtypesFor lists the qtypes whose answers at n differ from a qtype with no
// data anywhere: the types present at n and along its CNAME chain, and the
// types with rules of their own.
func (z *Zone) qtypesFor(n *node) []uint16 {
	seen := map[uint16]bool{mdns.TypeCNAME: true, mdns.TypeANY: true, mdns.TypeDS: true}
	m := n
	for hop := 0; hop < maxChain; hop++ {
		for t := range m.rrsets {
			seen[t] = true
		}
		c := m.rrsets[mdns.TypeCNAME]
		if c == nil {
			break
		}
		// Follow the chain as resolve does: into a wildcard when the
		// target has no node of its own, never past a cut or the zone.
		target := c[0].(*mdns.CNAME).Target
		if !mdns.IsSubDomain(z.Origin, target) {
			break
		}
		next, exact := z.find(target)
		if next.cut != nil {
			break
		}
		if !exact {
			if next.wild == nil {
				break
			}
			next = next.wild
		}
		m = next
	}
	out := make([]uint16, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	return out
}
