package dns

import (
	"strings"

	mdns "github.com/miekg/dns"
)

// Truncation as Knot DNS truncates (RFC 2181 9, RFC 4035 3.1): a reply
// that does not fit the client's size gets the answer, authority and
// needed glue RRsets (each RRset's RRSIGs, put after a section's RRsets,
// a set of their own) one by one, whole, up to the first that does not
// fit; that one and everything after it are left out and TC is set. The
// helpful additional records after them go only when all the rest fits,
// as many as fit, without TC.

// cut is how much of a template's body a reply sends: its first n bytes
// and, of the query-time proof inserted into them, its record (rr) and its
// RRSIGs (sigs).
type cut struct {
	n        int
	rr, sigs bool
}

// unit is where one RRset ends in a template's body (of those that must
// be there), with the section counts up to it.
type unit struct {
	end    uint16
	counts [3]uint16
}

// whole is the cut that sends all of t's body and of the proof.
func (t *template) whole() cut { return cut{n: len(t.body), rr: true, sigs: true} }

// fit chooses how much of t's body, with the query-time proof ins (nil
// for none), a reply with room bytes left sends: all of it; else the
// records that must be there and, from the end, as many helpful additional
// records as fit; else the RRsets that fit, in order, up to the first that
// does not, and TC is set. It returns the cut, the section counts and
// whether TC is set. It allocates nothing.
func (t *template) fit(room int, ins proof) (cut, [3]uint16, bool) {
	all := t.whole()
	if len(t.body)+ins.size() <= room {
		counts := t.counts
		if ins.l != nil {
			counts[1] += ins.l.count
		}
		return all, counts, false
	}
	if t.essential+ins.size() <= room {
		return t.fitExtras(room-ins.size(), ins)
	}
	c, counts := t.fitUnits(room, ins)
	return c, counts, true
}

// fitExtras is fit when the records that must be there fit, with room
// bytes for them and the helpful additional records.
func (t *template) fitExtras(room int, ins proof) (cut, [3]uint16, bool) {
	c := cut{n: t.essential, rr: true, sigs: true}
	counts := [3]uint16{t.counts[0], t.counts[1], t.essentialAR}
	if ins.l != nil {
		counts[1] += ins.l.count
	}
	k := 0 // extras that fit
	for k < len(t.extraEnds) && int(t.extraEnds[k]) <= room {
		k++
	}
	if sigs := len(t.extraEnds) - t.extraSigs; k > sigs {
		k = sigs // not all the RRSIGs fit: none go
	}
	if k > 0 {
		c.n = int(t.extraEnds[k-1])
	}
	counts[2] += uint16(k)
	return c, counts, false
}

// fitUnits is fit when the records that must be there do not all fit: the
// RRsets that do, in order, the proof's record and its RRSIGs among them
// at denyAt and denySigAt.
func (t *template) fitUnits(room int, ins proof) (cut, [3]uint16) {
	var c cut
	var counts [3]uint16 // of the body's records in the cut
	if ins.l == nil {    // nothing to insert: the proof's parts count as sent
		c.rr, c.sigs = true, true
	}
	extra, insCount := 0, uint16(0) // the proof's bytes and records in the cut
	// tryIns adds the proof's parts that go at body offset c.n, if they fit.
	tryIns := func() bool {
		if !c.rr && c.n == int(t.denyAt) {
			if c.n+extra+ins.rrLen() > room {
				return false
			}
			extra, insCount, c.rr = extra+ins.rrLen(), insCount+1, true
		}
		if !c.sigs && c.n == int(t.denySigAt) {
			if c.n+ins.size() > room {
				return false
			}
			extra, insCount, c.sigs = ins.size(), ins.l.count, true
		}
		return true
	}
	last := unit{end: uint16(t.essential), counts: [3]uint16{t.counts[0], t.counts[1], t.essentialAR}}
	for i := 0; tryIns() && i <= len(t.units); i++ {
		u := last
		if i < len(t.units) {
			u = t.units[i]
		}
		if int(u.end)+extra > room {
			break
		}
		c.n, counts = int(u.end), u.counts
	}
	counts[1] += insCount
	return c, counts
}

// setUnits records in t where each RRset of r's answer, authority and
// glue ends (RRSIGs: a set for each type covered), but the last (that is
// t.essential); end(i) is where record i of the body ends.
func (t *template) setUnits(r *result, end func(int) int) {
	var counts [3]uint16
	i := 0
	for sec, rrs := range [][]mdns.RR{r.answer, r.authority, r.glue} {
		for j, rr := range rrs {
			counts[sec]++
			i++
			if j+1 < len(rrs) && sameSet(rr, rrs[j+1]) {
				continue
			}
			t.units = append(t.units, unit{end: uint16(end(i - 1)), counts: counts})
		}
	}
	if len(t.units) > 0 {
		t.units = t.units[:len(t.units)-1]
	}
	if len(t.units) == 0 {
		t.units = nil
	}
}

// sameSet reports whether a and b belong to one RRset, RRSIGs to one set
// when they cover the same type.
func sameSet(a, b mdns.RR) bool {
	ha, hb := a.Header(), b.Header()
	if ha.Rrtype != hb.Rrtype || !strings.EqualFold(ha.Name, hb.Name) {
		return false
	}
	ca, _ := isSig(a)
	cb, _ := isSig(b)
	return ca == cb
}
