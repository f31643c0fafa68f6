package dns

import (
	mdns "github.com/miekg/dns"
)

// maxChain bounds CNAME chains followed inside a zone (loops end here too).
const maxChain = 16

// result is one answer worked out the slow, readable way; prepare packs one
// for every question a zone can be asked, so queries never run this code.
type result struct {
	rcode     int
	aa        bool
	answer    []mdns.RR
	authority []mdns.RR
	glue      []mdns.RR // additional records a referral needs (RFC 9471)
	extra     []mdns.RR // helpful additional records, dropped first when space is short
	deny      denyPoint // a proof left for query time (mode.vary)
	links     []*link   // the chain's records in authority
}

// mode is how an answer is worked out: with DNSSEC records (the query's
// DO bit), and for a query name that varies (templates for wildcard
// synthesis and NXDOMAIN: the proofs that depend on the name are left for
// query time, at result.deny).
type mode struct {
	do   bool
	vary bool
	// owner, if set, owns the records synthesized for the query name at
	// the first hop: the placeholder a wildcard's templates are packed for,
	// which differs from the wildcard's own name (its NSEC keeps that).
	owner string
}

// resolve answers qname/qtype from z (RFC 1034 4.3.2, RFC 4592, RFC 2308,
// RFC 6604, RFC 8482; with m.do, RFC 4035 3.1 and RFC 5155 7.2). qname is
// canonical and inside z.
func (z *Zone) resolve(qname string, qtype uint16, m mode) *result {
	r := z.resolveDO(qname, qtype, m)
	if m.do {
		sigsLast(r)
	}
	return r
}

// resolveDO is resolve with each RRset followed by its RRSIGs.
func (z *Zone) resolveDO(qname string, qtype uint16, m mode) *result {
	r := &result{rcode: mdns.RcodeSuccess, aa: true, deny: denyPoint{at: -1}}
	p := z.prover(m.do)
	name := qname
	seen := map[string]bool{}
	for hop := 0; ; hop++ {
		st, ok := z.locate(r, p, name, qtype, m, hop)
		if !ok {
			return r
		}
		target, follow := z.answerAt(r, p, st, qtype)
		if !follow {
			return r
		}
		seen[name] = true
		if !mdns.IsSubDomain(z.Origin, target) || seen[target] || hop+1 >= maxChain {
			return r // out of zone or a loop: the resolver takes it from here
		}
		name = target
	}
}

// step is one hop of a CNAME chain: name, the node that answers it (a
// wildcard for a synthesized name) and, for a synthesized name, its
// closest encloser.
type step struct {
	name, owner string // owner: of the records answering name
	src, ce     *node
	vary        bool // the proofs about name are left for query time
}

// locate finds the node answering name at hop; it answers r itself (and
// reports false) for a referral or NXDOMAIN.
func (z *Zone) locate(r *result, p *prover, name string, qtype uint16, m mode, hop int) (step, bool) {
	st := step{name: name, owner: m.own(name, hop), vary: hop == 0 && m.vary}
	n, exact := z.find(name)
	if cut := delegation(n, exact, qtype); cut != nil {
		if hop == 0 {
			r.aa = false
		}
		z.refer(r, cut, p)
		return st, false
	}
	st.src = n
	if !exact {
		if n.wild == nil {
			r.rcode = mdns.RcodeNameError
			z.negative(r, p)
			p.noName(r, name, n, st.vary)
			return st, false
		}
		st.src = n.wild
	}
	// A name synthesized from a wildcard (RFC 4592), or with vary the
	// wildcard's own templates: its proofs are about the name.
	if !exact || (st.vary && isWildcard(name)) {
		st.ce = z.nodes[parent(st.src.name)]
	}
	return st, true
}

// answerAt answers qtype at st into r and, for a CNAME to follow, reports
// its target and true.
func (z *Zone) answerAt(r *result, p *prover, st step, qtype uint16) (string, bool) {
	src := st.src
	c := src.rrsets[mdns.TypeCNAME]
	switch {
	case qtype == mdns.TypeANY:
		z.answerANY(r, src, st.owner, p)
	case c != nil && qtype != mdns.TypeCNAME:
		p.put(&r.answer, src, mdns.TypeCNAME, st.owner)
		p.wildcard(r, st.name, st.ce, st.vary)
		return c[0].(*mdns.CNAME).Target, true
	case src.rrsets[qtype] == nil:
		// NODATA (or the empty end of a chain).
		z.negative(r, p)
		p.noData(r, st.name, src, st.ce, st.vary)
		return "", false
	case qtype == mdns.TypeRRSIG:
		r.answer = append(r.answer, owned(someSigs(src), st.owner)...)
	default:
		p.put(&r.answer, src, qtype, st.owner)
		r.extra = append(r.extra, z.additional(src.rrsets[qtype], p)...)
	}
	p.wildcard(r, st.name, st.ce, st.vary)
	return "", false
}

// own is the owner of the records answering name at hop.
func (m mode) own(name string, hop int) string {
	if hop == 0 && m.owner != "" {
		return m.owner
	}
	return name
}

// someSigs are the RRSIGs an RRSIG query gets at n: those covering one
// type, the lowest, not all (as Knot DNS: no amplification).
func someSigs(n *node) []mdns.RR {
	var low uint16
	for t := range n.sigs {
		if low == 0 || t < low {
			low = t
		}
	}
	return n.sigs[low]
}

// negative adds the SOA of a negative answer to r, signed with DO.
func (z *Zone) negative(r *result, p *prover) {
	soa := z.negativeSOA()
	r.authority = append(r.authority, soa)
	if p != nil {
		for _, sig := range z.nodes[z.Origin].sigs[mdns.TypeSOA] {
			sig = mdns.Copy(sig)
			sig.Header().Ttl = soa.Header().Ttl // as Knot DNS: the negative TTL
			r.authority = append(r.authority, sig)
		}
	}
}

// delegation is the cut that answers a query of qtype for the name of n
// (exact) or below it: n's, except that DS lives on the parent side of the
// cut (RFC 4035 3.1.4.1). Nil when the zone answers itself.
func delegation(n *node, exact bool, qtype uint16) *node {
	if exact && n.cut == n && qtype == mdns.TypeDS {
		return nil
	}
	return n.cut
}

// refer makes r a referral to the zone delegated at cut: the child's NS in
// authority, the addresses of name servers inside the delegated zone as
// required glue, those of others in the zone as helpful extras.
func (z *Zone) refer(r *result, cut *node, p *prover) {
	r.authority = append(r.authority, cut.rrsets[mdns.TypeNS]...)
	if p != nil {
		if cut.rrsets[mdns.TypeDS] != nil {
			p.put(&r.authority, cut, mdns.TypeDS, cut.name) // a secure delegation
		} else {
			p.noData(r, cut.name, cut, nil, false) // RFC 4035 3.1.4, RFC 5155 7.2.7
		}
	}
	for _, ns := range cut.rrsets[mdns.TypeNS] {
		target := ns.(*mdns.NS).Ns
		if mdns.IsSubDomain(cut.name, target) {
			r.glue = append(r.glue, z.addresses(target, true, nil)...)
		} else {
			r.extra = append(r.extra, z.addresses(target, false, p)...)
		}
	}
}

// answerANY answers an ANY query for name from src (RFC 8482): one RRset,
// not all of them (no amplification), the one with the lowest type, as Knot
// DNS does. A CNAME owner answers with its CNAME, unfollowed.
func (z *Zone) answerANY(r *result, src *node, name string, p *prover) {
	t := lowestType(src)
	if t == 0 {
		z.negative(r, p)
		return
	}
	r.answer = append(r.answer, owned(src.rrsets[t], name)...)
	if p != nil {
		r.answer = append(r.answer, owned(src.sigs[t], name)...)
	}
	r.extra = append(r.extra, z.additional(src.rrsets[t], p)...)
}

// lowestType is the lowest RR type at n, 0 if it has none.
func lowestType(n *node) uint16 {
	var low uint16
	for t := range n.rrsets {
		if low == 0 || t < low {
			low = t
		}
	}
	return low
}

// owned returns set with its owner name set to name (wildcard synthesis).
func owned(set []mdns.RR, name string) []mdns.RR {
	if len(set) == 0 || set[0].Header().Name == name {
		return set
	}
	out := make([]mdns.RR, len(set))
	for i, rr := range set {
		out[i] = mdns.Copy(rr)
		out[i].Header().Name = name
	}
	return out
}

// negativeSOA is the SOA for negative answers: its TTL is the smaller of the
// SOA's own TTL and its MINIMUM field (RFC 2308 3 and 5).
func (z *Zone) negativeSOA() mdns.RR {
	soa := mdns.Copy(z.soa).(*mdns.SOA)
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return soa
}

// additional returns the in-zone addresses of the names an NS, MX or SRV
// RRset points at (RFC 1035 3.3, RFC 2782).
func (z *Zone) additional(set []mdns.RR, p *prover) []mdns.RR {
	var out []mdns.RR
	for _, rr := range set {
		if t := pointsAt(rr); t != nil {
			out = append(out, z.addresses(*t, false, p)...)
		}
	}
	return out
}

// pointsAt is the name an NS, MX or SRV record points at, the names whose
// addresses go in the additional section (RFC 1035 3.3, RFC 2782); nil for
// other types.
func pointsAt(rr mdns.RR) *string {
	switch r := rr.(type) {
	case *mdns.NS:
		return &r.Ns
	case *mdns.MX:
		return &r.Mx
	case *mdns.SRV:
		return &r.Target
	}
	return nil
}

// addresses returns the A and AAAA records of name if it is in the zone
// (each followed by its RRSIGs with p); occluded names (at or below a cut)
// only when glue is asked for.
func (z *Zone) addresses(name string, glue bool, p *prover) []mdns.RR {
	if !mdns.IsSubDomain(z.Origin, name) {
		return nil
	}
	n, ok := z.nodes[name]
	if !ok || (n.cut != nil) != glue {
		return nil
	}
	var out []mdns.RR
	p.put(&out, n, mdns.TypeA, name)
	p.put(&out, n, mdns.TypeAAAA, name)
	return out
}
