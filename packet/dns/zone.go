package dns

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet/secretfile"
)

// Zone is one zone loaded from a master file, with every answer it can give
// packed ahead of time.
type Zone struct {
	Origin string // canonical (lower-case, fully qualified) apex name
	File   string
	Source string // where it came from: "file" (a master file) or "transfer"
	Serial uint32
	Count  int // records loaded

	soa   *mdns.SOA
	nodes map[string]*node // by canonical presentation name; includes empty non-terminals

	// byWire indexes nodes by lower-case wire-format name, for lookups
	// straight from a query's bytes without allocating.
	byWire map[string]*node
	// nxdomain answers any name under the apex that has no node and no wildcard.
	nxdomain *template

	// DNSSEC (dnssec.go): the NSEC3 records and their RRSIGs by owner, as
	// loaded, and the chain of proofs (nil when the zone has none).
	nsec3  map[string][]mdns.RR
	chain  *chain
	signed bool // it has RRSIGs: answers with DO differ
}

// node is one owner name of a zone (or an empty non-terminal).
type node struct {
	name   string
	rrsets map[uint16][]mdns.RR
	sigs   map[uint16][]mdns.RR // the RRSIGs of rrsets[TypeRRSIG], by the type they cover
	cut    *node                // the delegation at or above this name (below the apex), if any
	wild   *node                // the "*" child, if any

	answers          // without the DO bit
	do      *answers // with it (&answers in a zone with no RRSIG)
}

// answers are a node's templates for one state of the DO bit.
type answers struct {
	exact        map[uint16]*template // answers for this exact name, by qtype
	exactDefault *template            // for qtypes with no entry in exact
	// synth holds, for a wildcard node, the answers it synthesizes for
	// names below its parent; for a delegation, synthDefault is the referral
	// for names below the cut.
	synth        map[uint16]*template
	synthDefault *template
	// nxdomain (signed zones, DO) is the answer for names below the node
	// when it is their closest encloser: its proof of no wildcard is the
	// node's own.
	nxdomain *template
}

// LoadZone reads and checks one RFC 1035 master file. The origin is the
// owner of its SOA record ($ORIGIN, or the file's first owner name).
func LoadZone(path string) (*Zone, error) {
	f, err := secretfile.OpenPlain(path) // a FIFO there must not block a start or reload
	if err != nil {
		return nil, fmt.Errorf("zone %s: %w", path, err)
	}
	defer f.Close()
	z, err := ParseZone(f, path)
	if z != nil {
		z.Source = "file"
	}
	return z, err
}

// ParseZone reads a master file from r; name is used in errors and as the
// base for $INCLUDE.
func ParseZone(r io.Reader, name string) (*Zone, error) {
	return parseZone(r, name, true)
}

// parseZone is ParseZone with $INCLUDE switchable (fuzzing must not read
// arbitrary files).
func parseZone(r io.Reader, name string, includes bool) (*Zone, error) {
	file := name
	if includes {
		file = includeBase(name)
	}
	zp := mdns.NewZoneParser(r, "", file)
	zp.SetIncludeAllowed(includes)
	zp.SetIncludeFS(includeFS) // nil: os.Open
	var rrs []mdns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("zone %s: %s", name, strings.TrimPrefix(includeErr(err.Error(), file), "dns: "))
	}
	z, err := newZone(rrs, name)
	if err != nil {
		return nil, fmt.Errorf("zone %s: %w", name, err)
	}
	return z, nil
}

func newZone(rrs []mdns.RR, file string) (*Zone, error) {
	soa, err := findSOA(rrs)
	if err != nil {
		return nil, err
	}
	z := &Zone{
		Origin: canonical(soa.Hdr.Name),
		File:   file,
		Serial: soa.Serial,
		soa:    soa,
		nodes:  map[string]*node{},
	}
	for _, rr := range rrs {
		if err := z.add(rr); err != nil {
			return nil, err
		}
	}
	for _, n := range z.nodes {
		dropped, err := n.check()
		if err != nil {
			return nil, err
		}
		z.Count -= dropped
	}
	for owner, rrs := range z.nsec3 {
		var dropped int
		z.nsec3[owner], dropped = dedupe(rrs)
		z.Count -= dropped
	}
	if apex := z.nodes[z.Origin]; apex.rrsets[mdns.TypeNS] == nil {
		return nil, fmt.Errorf("the apex %s has no NS record (add at least one, e.g. @ NS ns1)", z.Origin)
	}
	z.link()
	if err := z.loadChain(); err != nil {
		return nil, err
	}
	if err := z.prepare(); err != nil {
		return nil, err
	}
	return z, nil
}

// findSOA returns the one SOA record of a zone.
func findSOA(rrs []mdns.RR) (*mdns.SOA, error) {
	var soa *mdns.SOA
	for _, rr := range rrs {
		if s, ok := rr.(*mdns.SOA); ok {
			if soa != nil {
				return nil, fmt.Errorf("two SOA records (%s and %s); a zone has exactly one, at its apex", soa.Hdr.Name, s.Hdr.Name)
			}
			soa = s
		}
	}
	if soa == nil {
		return nil, errors.New("no SOA record; a zone file starts with the apex SOA (add one, e.g. @ SOA ns1 hostmaster 1 7200 900 1209600 300)")
	}
	return soa, nil
}

// add checks rr and adds it to its node, names made canonical; a
// duplicate of a record there is dropped.
func (z *Zone) add(rr mdns.RR) error {
	h := rr.Header()
	h.Name = canonical(h.Name)
	canonicalRdata(rr)
	if h.Class != mdns.ClassINET {
		return fmt.Errorf("%s %s: class %s; only IN is served", h.Name, mdns.TypeToString[h.Rrtype], mdns.ClassToString[h.Class])
	}
	if !mdns.IsSubDomain(z.Origin, h.Name) {
		return fmt.Errorf("%s %s is outside the zone %s (out-of-zone data; fix the name or $ORIGIN)", h.Name, mdns.TypeToString[h.Rrtype], z.Origin)
	}
	switch h.Rrtype {
	case mdns.TypeOPT:
		return fmt.Errorf("%s: OPT is not a zone record", h.Name)
	case mdns.TypeDNAME:
		return fmt.Errorf("%s: DNAME is not supported (its names would get NXDOMAIN); use CNAME records or a wildcard CNAME", h.Name)
	}
	if isNSEC3Record(rr) {
		z.addNSEC3(rr)
		return nil
	}
	n := z.node(h.Name)
	n.rrsets[h.Rrtype] = append(n.rrsets[h.Rrtype], rr) // duplicates go in check
	z.Count++
	z.signed = z.signed || h.Rrtype == mdns.TypeRRSIG
	return nil
}

// check checks n's CNAME (RFC 1034 3.6.2) and puts each of its RRsets in
// order: one TTL, the smallest, for all its records (they must agree: RFC
// 2181 5.2), and records in canonical order (RFC 4034 6.3), as Knot DNS
// serves them, so answers do not depend on the file's order. RRSIGs keep
// their TTLs (each follows the RRset it covers) and are filed by type.
func (n *node) check() (dropped int, err error) {
	for t, set := range n.rrsets { // first: a CNAME given twice is one
		var d int
		n.rrsets[t], d = dedupe(set)
		dropped += d
	}
	if c := n.rrsets[mdns.TypeCNAME]; c != nil {
		if len(c) > 1 {
			return 0, fmt.Errorf("%s has %d CNAME records; a name has at most one (RFC 1034 3.6.2)", n.name, len(c))
		}
		for t := range n.rrsets {
			if t != mdns.TypeCNAME && t != mdns.TypeRRSIG && t != mdns.TypeNSEC { // RFC 4035 2.5
				return 0, fmt.Errorf("%s has a CNAME and other data; a CNAME must be alone at its name (RFC 1034 3.6.2)", n.name)
			}
		}
	}
	for t, set := range n.rrsets {
		if t == mdns.TypeRRSIG {
			continue
		}
		ttl := set[0].Header().Ttl
		for _, rr := range set {
			ttl = min(ttl, rr.Header().Ttl)
		}
		for _, rr := range set {
			rr.Header().Ttl = ttl
		}
	}
	n.indexSigs()
	return dropped, nil
}

// dedupe sorts set (sortCanonical) and drops each record that duplicates
// the one before it (RFC 2181 5: an RRset has no duplicates; the first
// given is kept). Sorted first, the check is O(n log n): checking each
// record against those already added took 23 s for an RRset of 40,000,
// days for the 4M records a hostile primary may send.
func dedupe(set []mdns.RR) ([]mdns.RR, int) {
	sortCanonical(set)
	out := set[:0]
	for _, rr := range set {
		if len(out) > 0 && mdns.IsDuplicate(out[len(out)-1], rr) {
			continue
		}
		out = append(out, rr)
	}
	clear(set[len(out):])
	return out, len(set) - len(out)
}

// canonical lower-cases the ASCII letters of name in wire form (RFC 4343:
// only A-Z fold), so escapes such as \065 fold too and other bytes stay.
func canonical(name string) string {
	name = mdns.Fqdn(name)
	b := make([]byte, 256)
	n, err := mdns.PackDomainName(name, b, 0, nil, false)
	if err != nil {
		return name // reported when the name is packed
	}
	for i := 0; i < n && b[i] != 0; i += int(b[i]) + 1 {
		for j := i + 1; j <= i+int(b[i]); j++ {
			if 'A' <= b[j] && b[j] <= 'Z' {
				b[j] += 'a' - 'A'
			}
		}
	}
	s, _, err := mdns.UnpackDomainName(b[:n], 0)
	if err != nil {
		return name
	}
	return s
}

// canonicalRdata lower-cases the domain names inside rdata, so names
// compare byte for byte.
func canonicalRdata(rr mdns.RR) {
	if t := pointsAt(rr); t != nil {
		*t = canonical(*t)
	}
	switch r := rr.(type) {
	case *mdns.CNAME:
		r.Target = canonical(r.Target)
	case *mdns.PTR:
		r.Ptr = canonical(r.Ptr)
	case *mdns.SOA:
		r.Ns = canonical(r.Ns)
		r.Mbox = canonical(r.Mbox)
	}
}

// node returns the node for name, creating it and every missing ancestor up
// to the apex (empty non-terminals exist: RFC 4592 2.2.2).
func (z *Zone) node(name string) *node {
	n, ok := z.nodes[name]
	if !ok {
		n = &node{name: name, rrsets: map[uint16][]mdns.RR{}}
		z.nodes[name] = n
		if name != z.Origin {
			z.node(parent(name))
		}
	}
	return n
}

// parent returns the name one label up ("a.b." -> "b.", "b." -> ".").
func parent(name string) string {
	off, end := mdns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[off:]
}

// link sets each node's delegation and wildcard pointers.
func (z *Zone) link() {
	for name, n := range z.nodes {
		for a := name; a != z.Origin; a = parent(a) {
			if an := z.nodes[a]; an.rrsets[mdns.TypeNS] != nil {
				n.cut = an // keep the highest: data below a cut is occluded
			}
		}
		if isWildcard(name) && name != z.Origin {
			z.nodes[parent(name)].wild = n
		}
	}
}

// find returns the node for name, or the closest encloser and false.
func (z *Zone) find(name string) (*node, bool) {
	for a := name; ; a = parent(a) {
		if n, ok := z.nodes[a]; ok {
			return n, a == name
		}
	}
}

// eachRecord calls f with every record of z: its names' records and the
// NSEC3 records kept apart from them (a copy or a transfer without the
// latter loses the zone's proofs).
func (z *Zone) eachRecord(f func(rr mdns.RR)) {
	for _, n := range z.nodes {
		for _, rrset := range n.rrsets {
			for _, rr := range rrset {
				f(rr)
			}
		}
	}
	for _, rrs := range z.nsec3 {
		for _, rr := range rrs {
			f(rr)
		}
	}
}

// sortCanonical orders an RRset by its uncompressed rdata (records of
// several types, as the NSEC3 records and their RRSIGs kept together, by
// type first).
func sortCanonical(set []mdns.RR) {
	keys := make(map[mdns.RR][]byte, len(set))
	buf := make([]byte, mdns.MaxMsgSize)
	for _, rr := range set {
		cp := mdns.Copy(rr)
		cp.Header().Name = "."
		off, err := mdns.PackRR(cp, buf, 0, nil, false)
		if err != nil {
			keys[rr] = nil
			continue
		}
		keys[rr] = append([]byte(nil), buf[11:off]...) // after owner, type, class, TTL, rdlength
	}
	sort.SliceStable(set, func(i, j int) bool {
		if ti, tj := set[i].Header().Rrtype, set[j].Header().Rrtype; ti != tj {
			return ti < tj
		}
		return bytes.Compare(keys[set[i]], keys[set[j]]) < 0
	})
}
