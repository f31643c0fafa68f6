package dns

import (
	"bytes"
	"fmt"
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
	// essential is how much of body must fit, and essentialAR how many
	// additional records that part holds: the answer, authority and needed
	// glue (RFC 1035 7.3, RFC 9471). extraEnds are where each helpful
	// additional record after it ends; as many as fit are sent.
	essential   int
	essentialAR uint16
	extraEnds   []uint16
	// Templates for query names of any length (wildcard synthesis, names
	// below a cut, NXDOMAIN) were packed after a question name of qlen
	// bytes; the compression pointers at fixups move by the query name's
	// extra length, except those to offset 12 (the query name itself).
	qlen   int
	fixups []uint16
	// rrl is what the rate limiter keys this answer's bucket by.
	rrl *rrlTag
}

// prepare packs every answer the zone can give.
func (z *Zone) prepare() error {
	z.byWire = make(map[string]*node, len(z.nodes))
	origin, err := wireName(z.Origin)
	if err != nil {
		return fmt.Errorf("%s: %v", z.Origin, err)
	}
	plain := &rrlTag{zone: origin}
	for name, n := range z.nodes {
		wire, err := wireName(name)
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		z.byWire[string(wire)] = n
		if err := z.prepareNode(n, name, wire, plain); err != nil {
			return err
		}
	}
	z.nxdomain, err = packAnyName(&result{rcode: mdns.RcodeNameError, aa: true, authority: []mdns.RR{z.negativeSOA()}}, "*."+z.Origin)
	if z.nxdomain != nil {
		z.nxdomain.rrl = plain
	}
	return err
}

// prepareNode packs the answers of the node n (named name, wire in wire
// format) and tags them for the rate limiter: referrals by their delegation,
// wildcard syntheses by their owner, the rest by the zone (plain).
func (z *Zone) prepareNode(n *node, name string, wire []byte, plain *rrlTag) error {
	var err error
	var referral *rrlTag
	if n.cut != nil {
		cut, _ := wireName(n.cut.name) // packed without error as a node name already
		referral = &rrlTag{zone: plain.zone, owner: cut, referral: true}
	}
	tag := func(t *template) *template {
		if t != nil && !t.aa && referral != nil {
			t.rrl = referral
		} else if t != nil {
			t.rrl = plain
		}
		return t
	}
	if n.exactDefault, err = packExact(z.resolve(name, mdns.TypeNone), name, mdns.TypeNone); err != nil {
		return err
	}
	tag(n.exactDefault)
	n.exact = map[uint16]*template{}
	for _, qt := range z.qtypesFor(n) {
		t, err := packExact(z.resolve(name, qt), name, qt)
		if err != nil {
			return err
		}
		if !t.equal(n.exactDefault) { // most names answer CNAME, DS and the like with plain NODATA
			n.exact[qt] = tag(t)
		}
	}
	switch {
	case n.cut == n:
		if n.synthDefault, err = packAnyName(z.resolve(name, mdns.TypeNone), "*."+name); err != nil {
			return err
		}
		n.synthDefault.rrl = referral
	case isWildcard(name):
		return z.prepareWildcard(n, name, &rrlTag{zone: plain.zone, owner: wire, wildcard: true})
	}
	return nil
}

// prepareWildcard packs the answers the wildcard node n synthesizes, tagged
// wild for the rate limiter.
func (z *Zone) prepareWildcard(n *node, name string, wild *rrlTag) error {
	n.synth = map[uint16]*template{}
	for _, qt := range z.qtypesFor(n) {
		t, err := packAnyName(z.resolve(name, qt), name)
		if err != nil {
			return err
		}
		t.rrl = wild
		n.synth[qt] = t
	}
	var err error
	if n.synthDefault, err = packAnyName(z.resolve(name, mdns.TypeNone), name); err != nil {
		return err
	}
	n.synthDefault.rrl = wild
	return nil
}

func isWildcard(name string) bool { return len(name) > 2 && name[:2] == "*." }

func (t *template) equal(u *template) bool {
	return t.rcode == u.rcode && t.aa == u.aa && t.counts == u.counts && t.essential == u.essential &&
		t.essentialAR == u.essentialAR && bytes.Equal(t.body, u.body) && t.qlen == u.qlen
}

// wireName packs a name uncompressed.
func wireName(name string) ([]byte, error) {
	b := make([]byte, 256)
	n, err := mdns.PackDomainName(name, b, 0, nil, false)
	return b[:n], err
}

// packMsg packs r after a question for qname, compressed, and returns the
// template, whose body is everything after the question.
func packMsg(r *result, qname string, qtype uint16) (*template, error) {
	wq, err := wireName(qname)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", qname, err)
	}
	m := new(mdns.Msg)
	m.Compress = true
	m.Question = []mdns.Question{{Name: qname, Qtype: qtype, Qclass: mdns.ClassINET}}
	m.Answer, m.Ns = r.answer, r.authority
	m.Extra = append(append([]mdns.RR(nil), r.glue...), r.extra...)
	full, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %v", qname, mdns.TypeToString[qtype], err)
	}
	qend := headerLen + len(wq) + 4
	t := &template{
		rcode:       r.rcode,
		aa:          r.aa,
		counts:      [3]uint16{uint16(len(m.Answer)), uint16(len(m.Ns)), uint16(len(m.Extra))},
		body:        bytes.Clone(full[qend:]),
		essentialAR: uint16(len(r.glue)),
	}
	// Record boundaries: compression only points backwards, so any prefix
	// of whole records is a valid message on its own.
	ends, ptrs, ok := walkRecords(full, qend)
	if !ok || len(ends) != len(m.Answer)+len(m.Ns)+len(m.Extra) {
		return nil, fmt.Errorf("%s/%s: internal error: cannot walk the packed records", qname, mdns.TypeToString[qtype])
	}
	t.essential = len(t.body)
	if nEss := len(m.Answer) + len(m.Ns) + len(r.glue); nEss > 0 {
		t.essential = ends[nEss-1] - qend
	} else if len(ends) > 0 {
		t.essential = 0
	}
	for _, e := range ends[len(ends)-len(r.extra):] {
		t.extraEnds = append(t.extraEnds, uint16(e-qend))
	}
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
// safely (a body past 16 KiB), names are written in full instead.
func packAnyName(r *result, placeholder string) (*template, error) {
	t, err := packMsg(r, placeholder, mdns.TypeNone)
	if err != nil {
		return nil, err
	}
	wq, _ := wireName(placeholder)
	t.qlen = len(wq)
	if headerLen+t.qlen+4+len(t.body)+255 < 0x3FFF && t.check(r, placeholder) == nil {
		return t, nil
	}
	return packUncompressed(r, placeholder)
}

// check builds the reply for a query name 61 bytes longer than the
// placeholder and compares what a parser reads with r.
func (t *template) check(r *result, placeholder string) error {
	long := "x23456789012345678901234567890123456789012345678901234567890ab" + placeholder[1:]
	wq, err := wireName(long)
	if err != nil {
		return nil // too long to ask: nothing to check
	}
	msg := []byte{0, 0, 0x84, 0, 0, 1, byte(t.counts[0] >> 8), byte(t.counts[0]), byte(t.counts[1] >> 8), byte(t.counts[1]), byte(t.counts[2] >> 8), byte(t.counts[2])}
	msg = append(msg, wq...)
	msg = append(msg, 0, 0, 0, 1)
	msg = t.appendBody(msg, len(t.body), len(wq))
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

// appendBody appends the first n bytes of the body for a query name of
// qlen wire bytes, moving compression pointers as the name's length asks.
func (t *template) appendBody(b []byte, n, qlen int) []byte {
	start := len(b)
	b = append(b, t.body[:n]...)
	if delta := qlen - t.qlen; t.qlen > 0 && delta != 0 {
		for _, f := range t.fixups {
			if int(f) >= n {
				break
			}
			p := start + int(f)
			ptr := int(b[p]&0x3F)<<8 | int(b[p+1])
			if ptr != headerLen {
				ptr += delta
				b[p], b[p+1] = 0xC0|byte(ptr>>8), byte(ptr)
			}
		}
	}
	return b
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
	return &template{
		rcode:       r.rcode,
		aa:          r.aa,
		counts:      [3]uint16{uint16(len(r.answer)), uint16(len(r.authority)), uint16(len(r.glue) + len(r.extra))},
		body:        body,
		essential:   essential,
		essentialAR: uint16(len(r.glue)),
		extraEnds:   ends[len(ends)-len(r.extra):],
	}, nil
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
