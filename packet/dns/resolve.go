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
}

// resolve answers qname/qtype from z (RFC 1034 4.3.2, RFC 4592, RFC 2308,
// RFC 6604, RFC 8482). qname is canonical and inside z.
func (z *Zone) resolve(qname string, qtype uint16) *result {
	r := &result{rcode: mdns.RcodeSuccess, aa: true}
	name := qname
	seen := map[string]bool{}
	for hop := 0; ; hop++ {
		n, exact := z.find(name)
		if cut := delegation(n, exact, qtype); cut != nil {
			if hop == 0 {
				r.aa = false
			}
			z.refer(r, cut)
			return r
		}
		src := n
		if !exact {
			if n.wild == nil {
				r.rcode = mdns.RcodeNameError
				r.authority = append(r.authority, z.negativeSOA())
				return r
			}
			src = n.wild
		}
		if qtype == mdns.TypeANY {
			z.answerANY(r, src, name)
			return r
		}
		if c := src.rrsets[mdns.TypeCNAME]; c != nil && qtype != mdns.TypeCNAME {
			r.answer = append(r.answer, owned(c, name)...)
			seen[name] = true
			target := c[0].(*mdns.CNAME).Target
			if !mdns.IsSubDomain(z.Origin, target) || seen[target] || hop+1 >= maxChain {
				return r // out of zone or a loop: the resolver takes it from here
			}
			name = target
			continue
		}
		set := src.rrsets[qtype]
		if set == nil {
			// NODATA (or the empty end of a chain).
			r.authority = append(r.authority, z.negativeSOA())
			return r
		}
		r.answer = append(r.answer, owned(set, name)...)
		r.extra = append(r.extra, z.additional(set)...)
		return r
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
func (z *Zone) refer(r *result, cut *node) {
	r.authority = append(r.authority, cut.rrsets[mdns.TypeNS]...)
	for _, ns := range cut.rrsets[mdns.TypeNS] {
		target := ns.(*mdns.NS).Ns
		if mdns.IsSubDomain(cut.name, target) {
			r.glue = append(r.glue, z.addresses(target, true)...)
		} else {
			r.extra = append(r.extra, z.addresses(target, false)...)
		}
	}
}

// answerANY answers an ANY query for name from src (RFC 8482): one RRset,
// not all of them (no amplification), the one with the lowest type, as Knot
// DNS does. A CNAME owner answers with its CNAME, unfollowed.
func (z *Zone) answerANY(r *result, src *node, name string) {
	t := lowestType(src)
	if t == 0 {
		r.authority = append(r.authority, z.negativeSOA())
		return
	}
	r.answer = append(r.answer, owned(src.rrsets[t], name)...)
	r.extra = append(r.extra, z.additional(src.rrsets[t])...)
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
	if set[0].Header().Name == name {
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
func (z *Zone) additional(set []mdns.RR) []mdns.RR {
	var out []mdns.RR
	for _, rr := range set {
		if t := pointsAt(rr); t != nil {
			out = append(out, z.addresses(*t, false)...)
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

// addresses returns the A and AAAA records of name if it is in the zone;
// occluded names (at or below a cut) only when glue is asked for.
func (z *Zone) addresses(name string, glue bool) []mdns.RR {
	if !mdns.IsSubDomain(z.Origin, name) {
		return nil
	}
	n, ok := z.nodes[name]
	if !ok || (n.cut != nil) != glue {
		return nil
	}
	return append(append([]mdns.RR(nil), n.rrsets[mdns.TypeA]...), n.rrsets[mdns.TypeAAAA]...)
}
