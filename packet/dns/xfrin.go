package dns

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// Limits of one transfer: a primary that stalls or sends without end must
// not hold the refresh forever or fill the memory.
const (
	xfrTimeout    = 10 * time.Second // to connect, and for each message
	maxXfrRecords = 1 << 22
	tsigFudge     = 300
)

// maxXfrBytes bounds the records of one transfer, in uncompressed wire
// bytes: the record limit alone lets 4M records of 64 KB each (256 GB)
// in. 1 GiB holds 4M records of 256 bytes. A variable for the tests.
var maxXfrBytes = 1 << 30

// maxXfrTime bounds one transfer: a primary that sends a message just
// inside each read timeout could hold it for a year (the zone's other
// primaries are not tried and it does not expire meanwhile). An hour moves
// 1 GiB at 2.4 Mbit/s. A variable for the tests.
var maxXfrTime = time.Hour

// querySOA asks p for z's SOA serial over UDP, signed with z's key if it
// has one (and then the answer must be signed by it too).
func querySOA(z *secondary, p netip.AddrPort) (uint32, error) {
	m := new(mdns.Msg)
	m.SetQuestion(z.origin, mdns.TypeSOA)
	c := &mdns.Client{Net: "udp", Timeout: xfrTimeout, TsigSecret: z.sign(m)}
	r, _, err := c.Exchange(m, p.String())
	if r != nil { // also when its TSIG failed: the rcode says why
		if rerr := checkReply(z, r); rerr != nil {
			return 0, rerr
		}
	}
	if err != nil {
		return 0, describeXfrError(err)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*mdns.SOA); ok && canonical(soa.Hdr.Name) == z.origin {
			return soa.Serial, nil
		}
	}
	return 0, errors.New("the answer holds no SOA for the zone (is it configured on the primary?)")
}

// sign signs request m with z's key, if it has one, and returns the
// secrets that verify the answer (nil without a key).
func (z *secondary) sign(m *mdns.Msg) map[string]string {
	if z.key == nil {
		return nil
	}
	m.SetTsig(z.key.Name, z.key.Algorithm, tsigFudge, time.Now().Unix())
	return map[string]string{z.key.Name: z.key.Secret}
}

// checkReply turns an unsigned reply to a signed request, and an error
// rcode, into an error naming the likely cause.
func checkReply(z *secondary, r *mdns.Msg) error {
	if t := r.IsTsig(); t != nil && t.Error != mdns.RcodeSuccess {
		return fmt.Errorf("%s, TSIG error %s: the primary does not accept key %s (check its name, algorithm and secret on both sides)",
			rcodeName(r.Rcode), tsigErrorName(t.Error), z.key)
	}
	if r.Rcode == mdns.RcodeNotAuth && z.key != nil {
		return fmt.Errorf("the primary answered NOTAUTH: it does not accept TSIG key %s (check its name, algorithm and secret on both sides)", z.key)
	}
	if r.Rcode != mdns.RcodeSuccess {
		return fmt.Errorf("the primary answered %s", rcodeName(r.Rcode))
	}
	if z.key != nil && r.IsTsig() == nil {
		return errors.New("the answer is not signed (the primary does not use the key)")
	}
	return nil
}

func tsigErrorName(e uint16) string {
	switch e {
	case mdns.RcodeBadSig:
		return "BADSIG"
	case mdns.RcodeBadKey:
		return "BADKEY"
	case mdns.RcodeBadTime:
		return "BADTIME"
	}
	return rcodeName(int(e))
}

// fetchZone transfers z from p (typ xfrIXFR from cur's serial, or
// xfrAXFR) and builds the new zone. It returns a nil zone when an IXFR
// finds cur up to date, and the kind of transfer the primary sent
// ("axfr", "ixfr", or "ixfr-full": a whole zone in answer to IXFR).
func fetchZone(z *secondary, cur *Zone, p netip.AddrPort, typ int) (*Zone, string, error) {
	m := new(mdns.Msg)
	kind := "axfr"
	if typ == xfrIXFR {
		kind = "ixfr"
		m.SetIxfr(z.origin, cur.Serial, cur.soa.Ns, cur.soa.Mbox)
	} else {
		m.SetAxfr(z.origin)
	}
	tr := &mdns.Transfer{DialTimeout: xfrTimeout, ReadTimeout: xfrTimeout, WriteTimeout: xfrTimeout, TsigSecret: z.sign(m)}
	rrs, err := receive(tr, m, p)
	if err != nil {
		return nil, kind, err
	}
	if typ == xfrAXFR {
		nz, err := zoneFromAXFR(rrs, z.origin)
		return nz, kind, err
	}
	return zoneFromIXFR(rrs, cur)
}

// receive runs the transfer and collects its records.
func receive(tr *mdns.Transfer, m *mdns.Msg, p netip.AddrPort) ([]mdns.RR, error) {
	ch, err := tr.In(m, p.String())
	if err != nil {
		return nil, err
	}
	var late atomic.Bool
	deadline := time.AfterFunc(maxXfrTime, func() {
		late.Store(true)
		tr.Close() // In's goroutine sees the closed connection and ends
	})
	defer deadline.Stop()
	var rrs []mdns.RR
	var failed error
	size := 0
	for env := range ch {
		switch {
		case failed != nil: // drain: In's goroutine ends when the connection does
		case late.Load():
			failed = fmt.Errorf("took longer than %v: refused", maxXfrTime)
		case env.Error != nil:
			failed = env.Error
		case len(rrs)+len(env.RR) > maxXfrRecords:
			failed = fmt.Errorf("more than %d records: refused", maxXfrRecords)
			tr.Close()
		default:
			for _, rr := range env.RR {
				size += mdns.Len(rr)
			}
			if size > maxXfrBytes {
				failed = fmt.Errorf("more than %d bytes of records: refused", maxXfrBytes)
				tr.Close()
				continue
			}
			rrs = append(rrs, env.RR...)
		}
	}
	if failed != nil {
		return nil, describeXfrError(failed)
	}
	return rrs, nil
}

// describeXfrError says what an error of miekg/dns's transfer means.
func describeXfrError(err error) error {
	switch {
	case errors.Is(err, mdns.ErrSig), errors.Is(err, mdns.ErrSecret), errors.Is(err, mdns.ErrAuth), errors.Is(err, mdns.ErrNoSig):
		return fmt.Errorf("TSIG: %v (check the key on both sides)", err)
	case errors.Is(err, mdns.ErrSoa):
		return fmt.Errorf("%v: the primary refused or does not serve the zone", err)
	}
	return err
}

// zoneFromAXFR builds a zone from an AXFR's records: SOA, the records,
// the SOA again (RFC 5936 2.2).
func zoneFromAXFR(rrs []mdns.RR, origin string) (*Zone, error) {
	if len(rrs) < 2 || rrs[0].Header().Rrtype != mdns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != mdns.TypeSOA {
		return nil, errors.New("the transfer does not begin and end with the SOA (cut short?)")
	}
	z, err := newZone(rrs[:len(rrs)-1], "transfer")
	if err != nil {
		return nil, fmt.Errorf("the transferred zone is broken: %w", err)
	}
	if z.Origin != origin {
		return nil, fmt.Errorf("the transferred zone's SOA is for %s", z.Origin)
	}
	return z, nil
}

// zoneFromIXFR applies an IXFR's answer to cur (RFC 1995 4): the new SOA,
// then for each version step the old SOA, the records deleted, the new
// SOA, the records added, and the new SOA again at the end. An answer of
// the whole zone (AXFR form) replaces it; a lone SOA means no change.
func zoneFromIXFR(rrs []mdns.RR, cur *Zone) (*Zone, string, error) {
	if len(rrs) == 0 {
		return nil, "ixfr", errors.New("an empty answer")
	}
	last, ok := rrs[0].(*mdns.SOA)
	if !ok {
		return nil, "ixfr", errors.New("the answer does not begin with the SOA")
	}
	if len(rrs) == 1 {
		return nil, "ixfr", nil // up to date (RFC 1995 2)
	}
	if s, ok := rrs[1].(*mdns.SOA); !ok || s.Serial != cur.Serial {
		z, err := zoneFromAXFR(rrs, cur.Origin)
		return z, "ixfr-full", err
	}
	if end, ok := rrs[len(rrs)-1].(*mdns.SOA); !ok || end.Serial != last.Serial || len(rrs) < 4 {
		return nil, "ixfr", errors.New("the answer does not end with the new SOA (cut short?)")
	}
	set := zoneRecords(cur)
	if err := applyDiffs(set, rrs[1:len(rrs)-1], cur.Serial); err != nil {
		return nil, "ixfr", err
	}
	out := make([]mdns.RR, 0, len(set))
	for _, rr := range set {
		out = append(out, rr)
	}
	z, err := newZone(out, "transfer")
	if err != nil {
		return nil, "ixfr", fmt.Errorf("the zone after the differences is broken: %w", err)
	}
	return z, "ixfr", nil
}

// applyDiffs applies the difference sequences diffs (each: old SOA,
// deletions, new SOA, additions) to set, starting at serial from.
func applyDiffs(set map[string]mdns.RR, diffs []mdns.RR, from uint32) error {
	deleting := false
	for i, rr := range diffs {
		if soa, ok := rr.(*mdns.SOA); ok {
			deleting = !deleting
			if deleting && soa.Serial != from {
				return fmt.Errorf("a difference from serial %d follows one to %d", soa.Serial, from)
			}
			from = soa.Serial
		}
		if i == 0 && !deleting {
			return errors.New("malformed difference sequence")
		}
		k := rrKey(rr)
		if deleting {
			if _, ok := set[k]; !ok {
				return fmt.Errorf("the difference deletes %s, which the copy lacks (fall back to AXFR)", rrName(rr))
			}
			delete(set, k)
		} else {
			set[k] = mdns.Copy(rr)
		}
	}
	if deleting {
		return errors.New("the last difference has deletions and no new SOA")
	}
	return nil
}

// zoneRecords returns copies of every record of z by rrKey.
func zoneRecords(z *Zone) map[string]mdns.RR {
	set := make(map[string]mdns.RR, z.Count)
	z.eachRecord(func(rr mdns.RR) { set[rrKey(rr)] = mdns.Copy(rr) })
	return set
}

// rrKey identifies a record by owner, type, class and rdata (not TTL), as
// IXFR deletions name it, names in canonical case.
func rrKey(rr mdns.RR) string {
	cp := mdns.Copy(rr)
	cp.Header().Name = canonical(cp.Header().Name)
	cp.Header().Ttl = 0
	canonicalRdata(cp)
	return cp.String()
}

func rrName(rr mdns.RR) string {
	return rr.Header().Name + " " + mdns.TypeToString[rr.Header().Rrtype]
}
