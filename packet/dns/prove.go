package dns

import (
	mdns "github.com/miekg/dns"
)

// The DNSSEC side of the resolver (RFC 4035 3.1, RFC 5155 7.2): which
// RRSIGs, NSEC and NSEC3 records go with an answer. Like the resolver, it
// runs at load time only.

// prover adds DNSSEC records to results; a nil *prover (no DO bit) adds
// none, and put then adds the RRset alone.
type prover struct {
	z *Zone
	c *chain // nil: a zone with no chain has no proofs to give
}

// denyPoint is where, in a template for query names that vary, the one
// proof that depends on the name goes: NSEC, the record covering the name;
// NSEC3, the record covering its next closer name (the name one label
// below the closest encloser, the node the query's lookup stops at).
type denyPoint struct {
	at    int // authority index of the record; -1: none
	sigAt int // and of its RRSIGs
	kind  denial
}

func (z *Zone) prover(do bool) *prover {
	if !do {
		return nil
	}
	return &prover{z: z, c: z.chain}
}

// put appends n's RRset of type t, owned by name, and with p its RRSIGs.
func (p *prover) put(sec *[]mdns.RR, n *node, t uint16, name string) {
	*sec = append(*sec, owned(n.rrsets[t], name)...)
	if p != nil {
		*sec = append(*sec, owned(n.sigs[t], name)...)
	}
}

// link appends l (with its signatures) to r's authority unless it is there.
func (p *prover) link(r *result, l *link) {
	if l == nil {
		return
	}
	for _, rr := range r.authority {
		if rr == l.rr {
			return
		}
	}
	r.authority = append(r.authority, l.rr)
	r.authority = append(r.authority, l.sigs...)
	r.links = append(r.links, l)
}

// vary marks where the proof for the query's own name goes.
func (p *prover) vary(r *result) {
	r.deny = denyPoint{at: len(r.authority), sigAt: len(r.authority), kind: p.c.kind}
}

// nsec is the NSEC covering name (or matching it).
func (p *prover) nsec(name string) *link { return p.c.cover(canonicalKey(name)) }

// nsec3 is the NSEC3 matching name, or the one covering it.
func (p *prover) nsec3(name string) *link {
	h := p.c.hash(mustWire(name))
	return p.c.cover(h[:])
}

// nsec3Match is the NSEC3 of name, nil if it has none.
func (p *prover) nsec3Match(name string) *link { return p.c.match(p.c.hash(mustWire(name))) }

// provable is the closest ancestor of name (or name) with an NSEC3, and the
// next closer name below it on the way to name (RFC 5155 7.2.1).
func (p *prover) provable(name string) (string, string) {
	nc := name
	for a := name; ; nc, a = a, parent(a) {
		if p.nsec3Match(a) != nil || a == p.z.Origin {
			return a, nc
		}
	}
}

// noName proves that name does not exist, below its closest encloser ce
// (RFC 4035 3.1.3.2, RFC 5155 7.2.2): the name and the wildcard at ce are
// covered. With vary, the name's own proof is left for query time.
func (p *prover) noName(r *result, name string, ce *node, vary bool) {
	if p == nil || p.c == nil {
		return
	}
	if p.c.kind == denyNSEC {
		if vary {
			p.vary(r)
		} else {
			p.link(r, p.nsec(name))
		}
		p.link(r, p.nsec("*."+ce.name))
		return
	}
	cpe, nc := p.provable(ce.name)
	p.link(r, p.nsec3Match(cpe))
	switch {
	case cpe != ce.name:
		p.link(r, p.nsec3(nc)) // an opt-out span: the next closer is above the name
	case vary:
		p.vary(r)
	default:
		p.link(r, p.nsec3(nextCloser(name, ce.name)))
	}
	p.link(r, p.nsec3("*."+cpe))
}

// noData proves that n, named name, has no RRset of the type asked (RFC
// 4035 3.1.3.1, RFC 5155 7.2.3-7.2.5). A node synthesized from a wildcard
// (ce, its closest encloser, not nil) also proves that name does not exist.
func (p *prover) noData(r *result, name string, n *node, ce *node, vary bool) {
	if p == nil || p.c == nil {
		return
	}
	if p.c.kind == denyNSEC {
		if n.rrsets[mdns.TypeNSEC] != nil {
			p.link(r, p.nsec(n.name))
		} else {
			p.link(r, p.nsec(name)) // an empty non-terminal: the NSEC before it covers it
		}
		if ce != nil {
			p.wildcard(r, name, ce, vary)
		}
		return
	}
	if ce != nil { // Knot DNS's order: the wildcard, then the closest encloser proof
		p.link(r, p.nsec3Match(n.name))
		p.link(r, p.nsec3Match(ce.name))
		p.wildcard(r, name, ce, vary)
		return
	}
	if l := p.nsec3Match(name); l != nil {
		p.link(r, l)
		return
	}
	cpe, nc := p.provable(name) // RFC 5155 7.2.4: a DS query at an opt-out delegation
	p.link(r, p.nsec3Match(cpe))
	p.link(r, p.nsec3(nc))
}

// wildcard adds the proof that name, synthesized from the wildcard below
// ce, does not exist itself (RFC 4035 3.1.3.3, RFC 5155 7.2.6). ce nil: the
// answer was not synthesized.
func (p *prover) wildcard(r *result, name string, ce *node, vary bool) {
	if p == nil || p.c == nil || ce == nil {
		return
	}
	switch {
	case vary:
		p.vary(r)
	case p.c.kind == denyNSEC:
		p.link(r, p.nsec(name))
	default:
		p.link(r, p.nsec3(nextCloser(name, ce.name)))
	}
}

// nextCloser is the name one label longer than ce on the way to name,
// which is below ce.
func nextCloser(name, ce string) string {
	nc := name
	for a := name; a != ce && a != "."; nc, a = a, parent(a) {
	}
	return nc
}

// sigsLast moves the RRSIGs of each section of r after its other records,
// in the same order, as Knot DNS sends them, and moves r.deny with them.
func sigsLast(r *result) {
	if r.deny.at >= 0 {
		before := r.authority[:r.deny.at]
		r.deny.at = countSigs(before, false)
		r.deny.sigAt = countSigs(r.authority, false) + countSigs(before, true)
	}
	for _, sec := range []*[]mdns.RR{&r.answer, &r.authority, &r.extra} {
		var rrs, sigs []mdns.RR
		for _, rr := range *sec {
			if _, ok := isSig(rr); ok {
				sigs = append(sigs, rr)
			} else {
				rrs = append(rrs, rr)
			}
		}
		*sec = append(rrs, sigs...)
	}
}

// countSigs counts the RRSIGs in rrs (sigs), or the other records.
func countSigs(rrs []mdns.RR, sigs bool) int {
	n := 0
	for _, rr := range rrs {
		if _, ok := isSig(rr); ok == sigs {
			n++
		}
	}
	return n
}
