package dns

import (
	"bytes"
	"fmt"

	"github.com/miekg/dns"
)

// template is a packed answer: everything after the question section, and
// the header fields that go with it. A query's reply is its own header and
// question (the exact bytes it sent: 0x20 case survives), then body.
type template struct {
	rcode  int
	aa     bool
	counts [3]uint16 // answer, authority, additional
	body   []byte
	// essential is how much of body is left, and essentialAR how many
	// additional records, when the helpful additional records are dropped
	// to fit (RFC 1035 7.3: only the answer and needed glue must fit).
	essential   int
	essentialAR uint16
}

// prepare packs every answer the zone can give.
func (z *Zone) prepare() error {
	z.byWire = make(map[string]*node, len(z.nodes))
	var err error
	for name, n := range z.nodes {
		wire := make([]byte, 255)
		off, perr := dns.PackDomainName(name, wire, 0, nil, false)
		if perr != nil {
			return fmt.Errorf("%s: %v", name, perr)
		}
		z.byWire[string(wire[:off])] = n

		if n.exactDefault, err = packExact(z.resolve(name, dns.TypeNone), name, dns.TypeNone); err != nil {
			return err
		}
		n.exact = map[uint16]*template{}
		for _, qt := range z.qtypesFor(n) {
			t, err := packExact(z.resolve(name, qt), name, qt)
			if err != nil {
				return err
			}
			if !t.equal(n.exactDefault) { // most names answer CNAME, DS and the like with plain NODATA
				n.exact[qt] = t
			}
		}
		switch {
		case n.cut == n:
			if n.synthDefault, err = packIndependent(z.resolve(name, dns.TypeNone), ""); err != nil {
				return err
			}
		case name != z.Origin && n.name[:2] == "*.":
			n.synth = map[uint16]*template{}
			for _, qt := range z.qtypesFor(n) {
				if n.synth[qt], err = packIndependent(z.resolve(name, qt), name); err != nil {
					return err
				}
			}
			if n.synthDefault, err = packIndependent(z.resolve(name, dns.TypeNone), name); err != nil {
				return err
			}
		}
	}
	z.nxdomain, err = packIndependent(&result{rcode: dns.RcodeNameError, aa: true, authority: []dns.RR{z.negativeSOA()}}, "")
	return err
}

func (t *template) equal(u *template) bool {
	return t.rcode == u.rcode && t.aa == u.aa && t.counts == u.counts && t.essential == u.essential &&
		t.essentialAR == u.essentialAR && bytes.Equal(t.body, u.body)
}

// qtypesFor lists the qtypes whose answers at n differ from a qtype with no
// data anywhere: the types present at n and along its CNAME chain, and the
// types with rules of their own.
func (z *Zone) qtypesFor(n *node) []uint16 {
	seen := map[uint16]bool{dns.TypeCNAME: true, dns.TypeANY: true, dns.TypeDS: true}
	name := n.name
	for hop := 0; hop < maxChain; hop++ {
		m, ok := z.nodes[name]
		if !ok {
			break
		}
		for t := range m.rrsets {
			seen[t] = true
		}
		c := m.rrsets[dns.TypeCNAME]
		if c == nil {
			break
		}
		name = c[0].(*dns.CNAME).Target
	}
	out := make([]uint16, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	return out
}

// packExact packs r as the reply to exactly qname: names may point into the
// question (at offset 12), whose length is fixed for this name.
func packExact(r *result, qname string, qtype uint16) (*template, error) {
	m := new(dns.Msg)
	m.Compress = true
	m.Question = []dns.Question{{Name: qname, Qtype: qtype, Qclass: dns.ClassINET}}
	m.Answer, m.Ns = r.answer, r.authority
	qend := 12 + len(qname) + 1 + 4
	if qname == "." {
		qend = 12 + 1 + 4
	}
	m.Extra = r.glue
	short, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %v", qname, dns.TypeToString[qtype], err)
	}
	m.Extra = append(append([]dns.RR(nil), r.glue...), r.extra...)
	full, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %v", qname, dns.TypeToString[qtype], err)
	}
	if !bytes.HasPrefix(full[qend:], short[qend:]) {
		return nil, fmt.Errorf("%s/%s: internal error: additional records changed the packing before them", qname, dns.TypeToString[qtype])
	}
	return &template{
		rcode:       r.rcode,
		aa:          r.aa,
		counts:      [3]uint16{uint16(len(m.Answer)), uint16(len(m.Ns)), uint16(len(m.Extra))},
		body:        full[qend:],
		essential:   len(short) - qend,
		essentialAR: uint16(len(r.glue)),
	}, nil
}

// packIndependent packs r so it follows a question of any length: an owner
// equal to qname becomes a pointer to the question name, every other name
// is written in full. Used where the query name varies: wildcard synthesis,
// referrals for names below a cut, NXDOMAIN.
func packIndependent(r *result, qname string) (*template, error) {
	var body []byte
	b := make([]byte, dns.MaxMsgSize)
	var err error
	put := func(rrs []dns.RR) {
		for _, rr := range rrs {
			if err != nil {
				return
			}
			h := rr.Header()
			if h.Name == qname {
				body = append(body, 0xC0, 12)
			} else {
				var off int
				if off, err = dns.PackDomainName(h.Name, b, 0, nil, false); err != nil {
					err = fmt.Errorf("%s: %v", h.Name, err)
					return
				}
				body = append(body, b[:off]...)
			}
			cp := dns.Copy(rr)
			cp.Header().Name = "."
			var off int
			if off, err = dns.PackRR(cp, b, 0, nil, false); err != nil {
				err = fmt.Errorf("%s: %v", rr, err)
				return
			}
			body = append(body, b[1:off]...) // skip the root owner
		}
	}
	put(r.answer)
	put(r.authority)
	put(r.glue)
	essential := len(body)
	put(r.extra)
	return &template{
		rcode:       r.rcode,
		aa:          r.aa,
		counts:      [3]uint16{uint16(len(r.answer)), uint16(len(r.authority)), uint16(len(r.glue) + len(r.extra))},
		body:        body,
		essential:   essential,
		essentialAR: uint16(len(r.glue)),
	}, err
}
