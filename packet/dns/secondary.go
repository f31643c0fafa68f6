package dns

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
	"go.uber.org/zap"
)

// Secondary is one zone this server transfers from its primaries (RFC
// 5936, RFC 1995) instead of reading it from a file.
type Secondary struct {
	Zone      string           // the zone's origin
	Primaries []netip.AddrPort // asked in order; NOTIFY is accepted from these addresses only
	Key       string           // TSIG key name for transfers and NOTIFY; "" for none
}

// SecondaryConfig configures every secondary zone of a server.
type SecondaryConfig struct {
	Zones []Secondary
	// Dir keeps a copy of each transferred zone (ORIGIN.zone), loaded at
	// start so a restarted server answers before its first refresh; ""
	// keeps none.
	Dir  string
	Keys TSIGKeys
	Log  *zap.Logger
}

// Bounds of the SOA timers as followed (Knot DNS bounds them too): a zone
// with refresh 0 must not make the server hammer its primary.
const (
	minRefresh = time.Second
	maxRefresh = 24 * time.Hour
	// noZoneRetry is the retry interval while no copy exists (no SOA to
	// take it from).
	noZoneRetry = 5 * time.Second
)

// secondary is the state of one secondary zone.
type secondary struct {
	Secondary
	origin string // canonical
	wire   string // lower-case wire form, for NOTIFY lookups
	key    *TSIGKey
	notify chan struct{} // one pending check; more NOTIFYs coalesce
	// live is the zone as last transferred or loaded (nil: none), served
	// unless expired (then expiredCopy(live) is). The refresh goroutine's
	// own, once RunSecondaries runs.
	live *Zone

	lastRefresh atomic.Int64 // unix nanoseconds of the last successful check; 0: never
	expired     atomic.Bool
	transfers   [numXfrTypes][numXfrResults]atomic.Uint64
	failures    atomic.Uint64 // checks no primary answered
	notifies    [numNotifyResults]atomic.Uint64
	lastErr     string // the last failure logged (the refresh goroutine's own)
}

// xfrType and xfrResult label shardd_dns_transfers_total.
const (
	xfrAXFR = iota
	xfrIXFR
	numXfrTypes
)

const (
	xfrOK = iota
	xfrFailed
	numXfrResults
)

var xfrTypeNames, xfrResultNames = [numXfrTypes]string{"axfr", "ixfr"}, [numXfrResults]string{"ok", "failed"}

// secondaries are a server's secondary zones.
type secondaries struct {
	cfg    SecondaryConfig
	log    *zap.Logger
	zones  []*secondary
	byWire map[string]*secondary
	now    func() time.Time
}

// EnableSecondaries makes the server a secondary for cfg.Zones: it loads
// the copies kept in cfg.Dir and serves them at once (expired if older than
// their SOA expire). RunSecondaries then keeps them fresh. Call it before
// the handlers serve.
func (s *Server) EnableSecondaries(cfg SecondaryConfig) error {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	sec := &secondaries{cfg: cfg, log: cfg.Log, byWire: map[string]*secondary{}, now: time.Now}
	for _, c := range cfg.Zones {
		z, err := newSecondary(c, cfg.Keys)
		if err != nil {
			return err
		}
		if sec.byWire[z.wire] != nil {
			return fmt.Errorf("secondary zone %s is given twice", z.origin)
		}
		if s.zones.Load().byOrigin[z.wire] != nil {
			return fmt.Errorf("zone %s is given both as a file and as a secondary (give it once)", z.origin)
		}
		sec.zones = append(sec.zones, z)
		sec.byWire[z.wire] = z
	}
	if cfg.Dir != "" {
		if err := checkZoneDir(cfg.Dir); err != nil {
			return err
		}
	}
	s.sec = sec
	for _, z := range sec.zones {
		s.loadCopy(z)
	}
	return nil
}

func newSecondary(c Secondary, keys TSIGKeys) (*secondary, error) {
	if _, ok := mdns.IsDomainName(c.Zone); !ok {
		return nil, fmt.Errorf("secondary zone %q: not a domain name", c.Zone)
	}
	origin := canonical(c.Zone)
	if len(c.Primaries) == 0 {
		return nil, fmt.Errorf("secondary zone %s: no primary (give ZONE@ADDRESS:PORT)", origin)
	}
	wire, err := wireName(origin)
	if err != nil {
		return nil, fmt.Errorf("secondary zone %s: %v", origin, err)
	}
	z := &secondary{Secondary: c, origin: origin, wire: string(wire), notify: make(chan struct{}, 1)}
	if c.Key != "" {
		k, ok := keys.Get(c.Key)
		if !ok {
			return nil, fmt.Errorf("secondary zone %s: TSIG key %s is not in the key file (add it, or fix the name)", origin, c.Key)
		}
		z.key = &k
	}
	return z, nil
}

// swapZone puts z in place of the zone of the same origin (or adds it),
// atomically: a query sees the old zone or the new; the other zones stay
// as they are. source says why ("transfer", "copy" from --zone-dir,
// "expired", "refresh" out of expiry): a new version (transfer, copy) goes
// through zoneChanged (IXFR journal, NOTIFY to the secondaries of this
// server); an expiry and its end swap the same version's two faces and
// change neither.
func (s *Server) swapZone(z *Zone, source string) {
	wire, err := wireName(z.Origin)
	if err != nil {
		return // a loaded zone's origin always packs
	}
	newVersion := source == "transfer" || source == "copy"
	if newVersion {
		z.Source = "transfer" // before it is published: an expiry's faces are served already
	}
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	old := s.zones.Load()
	nz := &Zones{byOrigin: maps.Clone(old.byOrigin)}
	if nz.byOrigin == nil {
		nz.byOrigin = map[string]*Zone{}
	}
	nz.byOrigin[string(wire)] = z
	for _, c := range nz.byOrigin {
		nz.List = append(nz.List, c)
	}
	nz.sortList()
	s.zones.Store(nz)
	if newVersion {
		prev := old.byOrigin[string(wire)]
		if prev != nil && prev.expired() {
			prev = nil // not a version to take differences from: the journal starts again
		}
		s.zoneChanged(prev, z)
	}
}

// isSecondary reports whether origin (canonical) is one of the secondary
// zones: a zone file may not give it too.
func (s *Server) isSecondary(origin string) bool {
	if s.sec == nil {
		return false
	}
	wire, err := wireName(origin)
	return err == nil && s.sec.byWire[string(wire)] != nil
}

// served returns the current copy of z (expired or not), nil if none.
func (s *Server) served(z *secondary) *Zone { return z.live }

// expiredAnswer is the answer of an expired zone: SERVFAIL, no AA, with
// Extended DNS Error 24 Invalid Data (extendedError), as Knot DNS answers.
var expiredAnswer = &template{rcode: mdns.RcodeServerFailure}

// extendedError is the Extended DNS Error (RFC 8914) of a reply, 0 for
// none: 20 Not Authoritative for a name outside every zone, 24 Invalid
// Data from an expired zone.
func extendedError(q *query, rcode int, t *template) uint16 {
	switch {
	case t == nil && rcode == mdns.RcodeRefused && q.qend > 0:
		return mdns.ExtendedErrorCodeNotAuthoritative
	case t == expiredAnswer:
		return mdns.ExtendedErrorCodeInvalidData
	}
	return 0
}

// expiredCopy is z answering expiredAnswer to every name in it: its apex
// node and NXDOMAIN answer both give it, so the lookup needs no check of
// its own.
func expiredCopy(z *Zone) *Zone {
	wire, _ := wireName(z.Origin) // a loaded zone's origin packs
	fail := expiredAnswer
	cp := *z
	cp.nodes = nil
	apex := &node{name: z.Origin, answers: answers{exactDefault: fail}}
	apex.do = &apex.answers // with DO or without, the same SERVFAIL
	cp.byWire = map[string]*node{string(wire): apex}
	cp.nxdomain = fail
	return &cp
}

// expired reports whether z is an expired secondary zone's face
// (expiredCopy): it answers SERVFAIL and is not transferred out.
func (z *Zone) expired() bool { return z.nxdomain == expiredAnswer }

// RunSecondaries keeps every secondary zone fresh until stop closes: a
// check at once, then at the SOA's refresh interval (retry after a
// failure), and at each NOTIFY; a zone not refreshed for its SOA's expire
// interval answers SERVFAIL until a check succeeds.
func (s *Server) RunSecondaries(stop <-chan struct{}) {
	if s.sec == nil {
		return
	}
	var wg sync.WaitGroup
	for _, z := range s.sec.zones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.follow(z, stop)
		}()
	}
	wg.Wait()
}

// follow is one zone's refresh loop.
func (s *Server) follow(z *secondary, stop <-chan struct{}) {
	next := s.sec.now() // check at once
	var last time.Time  // the last check began
	for {
		wait := time.Until(next)
		if exp, ok := s.expiresAt(z); ok && !z.expired.Load() {
			wait = min(wait, time.Until(exp))
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-stop:
			t.Stop()
			return
		case <-z.notify:
			// At most one check a second however many NOTIFYs come (they
			// may be forged from a primary's address).
			next = last.Add(minRefresh)
		case <-t.C:
		}
		t.Stop()
		if now := s.sec.now(); !now.Before(next) {
			last = now
			next = now.Add(s.check(z))
		}
		s.expireIfDue(z)
	}
}

// expiresAt is when z's copy expires (its last refresh plus the SOA's
// expire); false without a copy.
func (s *Server) expiresAt(z *secondary) (time.Time, bool) {
	cur := s.served(z)
	last := z.lastRefresh.Load()
	if cur == nil || last == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, last).Add(time.Duration(cur.soa.Expire) * time.Second), true
}

// expireIfDue makes z answer SERVFAIL once its copy is older than its
// expire interval (RFC 1035 4.3.5; Knot DNS answers so too).
func (s *Server) expireIfDue(z *secondary) {
	exp, ok := s.expiresAt(z)
	if !ok || z.expired.Load() || s.sec.now().Before(exp) {
		return
	}
	cur := s.served(z)
	z.expired.Store(true)
	s.swapZone(expiredCopy(cur), "expired")
	s.sec.log.Error("secondary zone expired: no primary answered for its SOA expire interval; it answers SERVFAIL until a refresh succeeds",
		zap.String("zone", z.origin), zap.Uint32("serial", cur.Serial), zap.Duration("expire", time.Duration(cur.soa.Expire)*time.Second))
}

// check asks the primaries for z's SOA and transfers the zone when theirs
// is newer; it returns when to check next: the SOA's refresh interval after
// a success, its retry interval after a failure.
func (s *Server) check(z *secondary) time.Duration {
	cur := s.served(z)
	err := s.refresh(z, cur)
	cur = s.served(z)
	if err != nil {
		z.failures.Add(1)
		if msg := err.Error(); msg != z.lastErr { // once per kind of failure, not at every retry
			z.lastErr = msg
			s.sec.log.Warn("secondary zone refresh failed; the copy being served (if any) stays", zap.String("zone", z.origin), zap.Error(err))
		}
		if cur == nil {
			return noZoneRetry
		}
		return soaInterval(cur.soa.Retry)
	}
	z.lastErr = ""
	z.lastRefresh.Store(s.sec.now().UnixNano())
	if z.expired.Swap(false) {
		s.swapZone(cur, "refresh")
		s.sec.log.Info("secondary zone no longer expired", zap.String("zone", z.origin), zap.Uint32("serial", cur.Serial))
	}
	s.touchCopy(z)
	return soaInterval(cur.soa.Refresh)
}

func soaInterval(sec uint32) time.Duration {
	return min(max(time.Duration(sec)*time.Second, minRefresh), maxRefresh)
}

// refresh does one check against the primaries in order, stopping at the
// first that answers.
func (s *Server) refresh(z *secondary, cur *Zone) error {
	var errs []string
	for _, p := range z.Primaries {
		err := s.refreshFrom(z, cur, p)
		if err == nil {
			return nil
		}
		errs = append(errs, err.Error())
	}
	return errors.New(strings.Join(errs, "; "))
}

// refreshFrom checks z against primary p and transfers it when p's serial
// is newer than cur's (RFC 1982 order), by IXFR when there is a copy to
// apply differences to, falling back to AXFR.
func (s *Server) refreshFrom(z *secondary, cur *Zone, p netip.AddrPort) error {
	serial, err := querySOA(z, p)
	if err != nil {
		return fmt.Errorf("primary %s: SOA query: %v", p, err)
	}
	if cur != nil && !serialLess(cur.Serial, serial) {
		return nil
	}
	if cur != nil {
		err = s.transfer(z, cur, p, xfrIXFR)
		if err == nil {
			return nil
		}
	}
	return s.transfer(z, cur, p, xfrAXFR)
}

// transfer runs one AXFR or IXFR from p and swaps the result in; one log
// line says how it went.
func (s *Server) transfer(z *secondary, cur *Zone, p netip.AddrPort, typ int) error {
	start := s.sec.now()
	var from uint32
	if cur != nil {
		from = cur.Serial
	}
	nz, kind, err := fetchZone(z, cur, p, typ)
	if err == nil && nz == nil {
		return nil // IXFR: no change since the SOA query (the primary went back?)
	}
	fields := []zap.Field{zap.String("zone", z.origin), zap.String("type", kind), zap.Stringer("primary", p),
		zap.Uint32("serial_from", from), zap.Duration("duration", s.sec.now().Sub(start))}
	if err != nil {
		z.transfers[typ][xfrFailed].Add(1)
		s.sec.log.Warn("zone transfer failed; the copy being served (if any) stays", append(fields, zap.String("result", "failed"), zap.Error(err))...)
		return fmt.Errorf("primary %s: %s: %v", p, kind, err)
	}
	z.transfers[typ][xfrOK].Add(1)
	nz.File = s.copyPath(z)
	if err := s.writeCopy(z, nz, p); err != nil {
		s.sec.log.Error("zone copy not written; a restart will transfer the zone again", zap.String("zone", z.origin), zap.Error(err))
	}
	z.live = nz
	s.swapZone(nz, "transfer")
	z.expired.Store(false)
	s.sec.log.Info("zone transferred", append(fields, zap.String("result", "ok"), zap.Uint32("serial", nz.Serial), zap.Int("records", nz.Count))...)
	return nil
}
