package dns

import (
	"sync"

	mdns "github.com/miekg/dns"
)

// A zone's journal is the differences between the versions this server
// loaded, oldest first, for IXFR (RFC 1995). It is bounded in versions and
// in records; the oldest go first. A version whose serial does not move
// forward (RFC 1982) starts the journal again: IXFR from an older serial
// then gets the full zone, as RFC 1995 allows.

// diff is the change from one version of a zone to the next.
type diff struct {
	from, to *mdns.SOA
	del, add []mdns.RR // without the SOA
}

func (d *diff) records() int { return len(d.del) + len(d.add) + 2 }

// journals holds every zone's journal.
type journals struct {
	mu         sync.Mutex
	byZone     map[string][]*diff // by canonical origin, oldest first
	maxVers    int
	maxRecords int
}

func (j *journals) init(versions, records int) {
	j.byZone = map[string][]*diff{}
	j.maxVers, j.maxRecords = versions, records
}

// record adds the change from old to new to new's journal, or starts the
// journal again when the serial did not move forward or the change is
// larger than the journal may hold.
func (j *journals) record(old, new *Zone) {
	var d *diff
	if old != nil && old.Origin == new.Origin && serialLess(old.Serial, new.Serial) {
		d = zoneDiff(old, new)
		if d.records() > j.maxRecords {
			d = nil
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if d == nil {
		delete(j.byZone, new.Origin)
		return
	}
	list := append(j.byZone[new.Origin], d)
	n := 0
	for _, x := range list {
		n += x.records()
	}
	for len(list) > j.maxVers || n > j.maxRecords {
		n -= list[0].records()
		list[0] = nil
		list = list[1:]
	}
	j.byZone[new.Origin] = list
}

// drop forgets a zone's journal.
func (j *journals) drop(origin string) {
	j.mu.Lock()
	delete(j.byZone, origin)
	j.mu.Unlock()
}

// since returns the changes that lead from serial to the zone's version
// current, or false when the journal does not go back to serial or does
// not end at current's serial (a version loaded since and not recorded).
func (j *journals) since(current *Zone, serial uint32) ([]*diff, bool) {
	j.mu.Lock()
	list := j.byZone[current.Origin]
	j.mu.Unlock()
	if len(list) == 0 || list[len(list)-1].to.Serial != current.Serial {
		return nil, false
	}
	for i, d := range list {
		if d.from.Serial == serial {
			return list[i:], true
		}
	}
	return nil, false
}

// serialLess is RFC 1982 serial number arithmetic: a comes before b.
func serialLess(a, b uint32) bool {
	return a != b && int32(b-a) > 0
}

// zoneDiff returns the records of old missing from new (deleted) and
// those of new missing from old (added), SOA apart.
func zoneDiff(old, new *Zone) *diff {
	d := &diff{from: old.soa, to: new.soa}
	had := map[string]mdns.RR{} // old's records new lacks, once new is walked
	_ = old.eachRR(func(rr mdns.RR) error {
		had[rr.String()] = rr
		return nil
	})
	_ = new.eachRR(func(rr mdns.RR) error {
		k := rr.String()
		if _, ok := had[k]; ok {
			delete(had, k)
			return nil
		}
		d.add = append(d.add, rr)
		return nil
	})
	for _, rr := range had {
		d.del = append(d.del, rr)
	}
	return d
}

// eachRR calls f with every record of the zone but its SOA (eachRecord's
// walk, NSEC3 records included), until f returns an error, which it
// returns.
func (z *Zone) eachRR(f func(mdns.RR) error) error {
	var err error
	z.eachRecord(func(rr mdns.RR) {
		if err == nil && rr.Header().Rrtype != mdns.TypeSOA { // a zone has one SOA, its apex's
			err = f(rr)
		}
	})
	return err
}
