package dns

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	mdns "github.com/miekg/dns"
)

// A reply's size decides where it is truncated, so the names in it are
// compressed as Knot DNS compresses them (libknot's compr_put_dname and
// write_owner), not as tightly as possible: a name is compared only with
// one earlier name, the suffix (the query name, or the last name written
// that took more than a pointer), and the common labels at its end become
// a pointer; an owner goes as a bare pointer only where Knot has a hint
// for it (the first answer RRset: the query name; the other records of an
// RRset: its first owner; an RRSIG: the owner of the RRset it covers; an
// additional address: the NS, MX or SRV target naming it) or when it is
// the suffix itself.

// knotPacker packs a message as Knot DNS does.
type knotPacker struct {
	b, buf        []byte         // the message; room to pack one record
	suffix        int            // where the suffix name starts
	owners        map[setID]int  // an RRset: where its owner was written
	targets       map[string]int // a name: where an NS, MX or SRV target of that name was written
	answerStarted bool
	index         int // of the record in its RRset
}

// knotRdataHints is how many records of an RRset Knot keeps the place of
// the rdata name of (KNOT_COMPR_HINT_COUNT 16, less the owner's).
const knotRdataHints = 15

// packKnot packs header, question (qname/qtype) and r's records, each
// section's RRsets in order, compressed as Knot DNS compresses them.
func packKnot(r *result, qname string, qtype uint16) ([]byte, error) {
	wq, err := wireName(qname)
	if err != nil {
		return nil, err
	}
	k := packers.Get().(*knotPacker)
	defer packers.Put(k)
	k.reset()
	extra := append(append([]mdns.RR(nil), r.glue...), r.extra...)
	k.b = append(k.b, 0, 0, 0x84, 0, 0, 1,
		byte(len(r.answer)>>8), byte(len(r.answer)), byte(len(r.authority)>>8), byte(len(r.authority)), byte(len(extra)>>8), byte(len(extra)))
	k.b = append(k.b, wq...)
	k.b = append(k.b, byte(qtype>>8), byte(qtype), 0, 1)
	for sec, rrs := range [][]mdns.RR{r.answer, r.authority, extra} {
		for i, rr := range rrs {
			if i == 0 || !sameSet(rrs[i-1], rr) {
				k.index = 0
			} else {
				k.index++
			}
			if err := k.put(rr, k.index == 0, sec); err != nil {
				return nil, fmt.Errorf("%s: %v", rr.Header().Name, err)
			}
		}
	}
	return bytes.Clone(k.b), nil
}

// packers keeps knotPackers (their buffers and maps) from one answer
// packed to the next: a zone packs thousands.
var packers = sync.Pool{New: func() any {
	return &knotPacker{buf: make([]byte, mdns.MaxMsgSize), owners: map[setID]int{}, targets: map[string]int{}}
}}

func (k *knotPacker) reset() {
	k.b, k.suffix, k.answerStarted, k.index = k.b[:0], headerLen, false, 0
	clear(k.owners)
	clear(k.targets)
}

// setID names an RRset: owner (lower case) and type (RRSIGs: the type
// they cover).
type setID struct {
	name  string
	rtype uint16
}

func setKey(rr mdns.RR) setID {
	t := rr.Header().Rrtype
	if c, ok := isSig(rr); ok {
		t = c
	}
	return setID{strings.ToLower(rr.Header().Name), t}
}

// put appends rr, the first of its RRset or not, in section sec.
func (k *knotPacker) put(rr mdns.RR, first bool, sec int) error {
	n, err := mdns.PackRR(rr, k.buf, 0, nil, false)
	if err != nil {
		return err
	}
	raw := k.buf[:n]
	ownerEnd := nameEnd(raw, 0)
	if ownerEnd < 0 || ownerEnd+10 > len(raw) {
		return fmt.Errorf("cannot pack")
	}
	k.putOwner(rr, raw[:ownerEnd], first, sec)
	k.b = append(k.b, raw[ownerEnd:ownerEnd+8]...) // type, class, TTL
	rdlenAt := len(k.b)
	k.b = append(k.b, 0, 0)
	rd := raw[ownerEnd+10:]
	switch rr.Header().Rrtype {
	case mdns.TypeNS, mdns.TypeCNAME, mdns.TypePTR, mdns.TypeMB, mdns.TypeMD, mdns.TypeMF, mdns.TypeMG, mdns.TypeMR:
		k.target(rr, rd)
		k.putName(rd)
	case mdns.TypeMX:
		k.b = append(k.b, rd[:2]...)
		k.target(rr, rd[2:])
		k.putName(rd[2:])
	case mdns.TypeSOA, mdns.TypeMINFO:
		e := nameEnd(rd, 0)
		k.putName(rd[:e])
		e2 := nameEnd(rd, e)
		k.putName(rd[e:e2])
		k.b = append(k.b, rd[e2:]...)
	case mdns.TypeSRV:
		k.b = append(k.b, rd[:6]...)
		k.target(rr, rd[6:])
		k.b = append(k.b, rd[6:]...)
	default:
		k.b = append(k.b, rd...)
	}
	rdlen := len(k.b) - rdlenAt - 2
	k.b[rdlenAt], k.b[rdlenAt+1] = byte(rdlen>>8), byte(rdlen)
	return nil
}

// target notes where the NS, MX or SRV target name (at the end of the
// message, about to be written) goes: an address record owned by it
// points there.
func (k *knotPacker) target(rr mdns.RR, name []byte) {
	switch rr.Header().Rrtype {
	case mdns.TypeNS, mdns.TypeMX, mdns.TypeSRV:
	default:
		return
	}
	key := strings.ToLower(string(name))
	if _, ok := k.targets[key]; !ok && len(k.b) < 0x3FFF && k.index < knotRdataHints {
		k.targets[key] = len(k.b)
	}
}

// putOwner appends rr's owner (uncompressed wire): a pointer where Knot
// has a hint for it or it is the suffix, else compressed against the query
// name.
func (k *knotPacker) putOwner(rr mdns.RR, owner []byte, first bool, sec int) {
	key := setKey(rr)
	hint, ok := k.hint(rr, key, owner, first, sec)
	if sec == 0 {
		k.answerStarted = true
	}
	if !ok && k.nameAt(k.suffix, owner) {
		hint, ok = k.suffix, true
	}
	_, seen := k.owners[key]
	if ok {
		k.b = append(k.b, 0xC0|byte(hint>>8), byte(hint))
		if !seen {
			k.owners[key] = hint
		}
		return
	}
	k.suffix = headerLen
	at := len(k.b)
	k.putName(owner)
	if !seen && at < 0x3FFF {
		k.owners[key] = at
	}
}

// hint is where Knot's hint for rr's owner points, if it has one: the
// RRset's first owner (key), the query name for the first answer RRset,
// the covered RRset's owner for an RRSIG, the target naming an additional
// address.
func (k *knotPacker) hint(rr mdns.RR, key setID, owner []byte, first bool, sec int) (int, bool) {
	at, ok := k.owners[key]
	_, sig := isSig(rr)
	t := rr.Header().Rrtype
	switch {
	case !first && ok, sig && ok:
		return at, true
	case sec == 0 && !k.answerStarted:
		return headerLen, true
	case sec == 2 && (t == mdns.TypeA || t == mdns.TypeAAAA):
		at, ok = k.targets[strings.ToLower(string(owner))]
		return at, ok
	}
	return 0, false
}

// labels stores where each label of the name at off in k.b starts,
// following compression pointers, and returns how many there are.
func (k *knotPacker) labels(off int, out *[128]int) int {
	n := 0
	for hops := 0; off < len(k.b) && hops < 256 && n < len(out); hops++ {
		l := int(k.b[off])
		switch {
		case l == 0:
			return n
		case l&0xC0 == 0xC0:
			off = int(k.b[off]&0x3F)<<8 | int(k.b[off+1])
			continue
		}
		out[n] = off
		n++
		off += 1 + l
	}
	return n
}

// nameAt reports whether the name at off in k.b is name (uncompressed).
func (k *knotPacker) nameAt(off int, name []byte) bool {
	var ls [128]int
	i := 0
	for _, l := range ls[:k.labels(off, &ls)] {
		if i >= len(name) || !labelEqual(name[i:], k.b[l:]) {
			return false
		}
		i += int(name[i]) + 1
	}
	return i < len(name) && name[i] == 0
}

// putName appends name (uncompressed wire), compressed against the
// suffix as Knot's compr_put_dname does, and makes it the suffix if it
// took more than a pointer.
func (k *knotPacker) putName(name []byte) {
	at := len(k.b)
	var nla, sla [128]int
	nl := nla[:0] // where name's labels start
	for i := 0; i < len(name) && name[i] != 0 && len(nl) < len(nla); i += int(name[i]) + 1 {
		nl = append(nl, i)
	}
	if len(nl) == 0 {
		k.b = append(k.b, 0)
		return
	}
	sl := sla[:k.labels(k.suffix, &sla)]
	if len(sl) > len(nl) {
		sl = sl[len(sl)-len(nl):]
	}
	lead := len(nl) - len(sl) // labels of name before the aligned part
	match := len(nl)          // where the common tail begins (label index in name)
	for j := len(nl) - 1; j >= lead && labelEqual(name[nl[j]:], k.b[sl[j-lead]:]); j-- {
		match = j
	}
	if match == len(nl) {
		k.b = append(k.b, name...)
	} else {
		k.b = append(k.b, name[:nl[match]]...)
		p := sl[match-lead]
		k.b = append(k.b, 0xC0|byte(p>>8), byte(p))
	}
	if written := len(k.b) - at; written > 2 && len(k.b) < 0x3FFF {
		k.suffix = at
	}
}

// nameEnd is where the uncompressed name at off in b ends, -1 if it
// does not.
func nameEnd(b []byte, off int) int {
	for off < len(b) {
		if b[off] == 0 {
			return off + 1
		}
		off += int(b[off]) + 1
	}
	return -1
}
