package dns

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// RRLConfig is response rate limiting (RRL) as Knot DNS's mod-rrl, BIND and
// NSD do it: UDP responses are counted per source prefix, response class and
// name, and past the rate they are dropped, or every Slip-th one is sent
// truncated and empty so that a real client retries over TCP.
type RRLConfig struct {
	Rate       int            // responses per second per bucket; 0: no limit
	Slip       int            // every Slip-th limited response goes out truncated; 0: none, 1: all
	Window     time.Duration  // a bucket holds Rate x Window responses: the burst after a quiet spell
	IPv4Prefix int            // source prefix lengths sharing a bucket
	IPv6Prefix int            //
	Exempt     []netip.Prefix // sources never limited
	TableSize  int            // buckets, rounded up to a power of two; 0: 1<<18
}

// DefaultRRLTableSize is the number of buckets when RRLConfig.TableSize is 0
// (16 bytes each: 4 MiB).
const DefaultRRLTableSize = 1 << 18

// Validate checks c and returns a one-line error naming the fix.
func (c RRLConfig) Validate() error {
	switch {
	case c.Rate < 0:
		return errors.New("--rrl-rate must be 0 (off) or more responses per second")
	case c.Rate > 1e9:
		return errors.New("--rrl-rate above 1e9 responses per second limits nothing; use 0 to turn RRL off")
	case c.Slip < 0:
		return errors.New("--rrl-slip must be 0 (drop every limited response) or more")
	case c.Rate > 0 && c.Window <= 0:
		return errors.New("--rrl-window must be positive, e.g. 1s")
	case c.IPv4Prefix < 1 || c.IPv4Prefix > 32:
		return fmt.Errorf("--rrl-ipv4-prefix %d: want 1 to 32 (default 24)", c.IPv4Prefix)
	case c.IPv6Prefix < 1 || c.IPv6Prefix > 128:
		return fmt.Errorf("--rrl-ipv6-prefix %d: want 1 to 128 (default 56)", c.IPv6Prefix)
	case c.TableSize < 0 || c.TableSize > 1<<26:
		return fmt.Errorf("RRL table size %d: want 0 (default) to %d", c.TableSize, 1<<26)
	}
	return nil
}

// rrlClass is how a response is classified (as Knot DNS's mod-rrl does, with
// referrals apart): responses of different classes count in different
// buckets, so a flood of one kind does not limit the others.
type rrlClass uint8

const (
	clsPositive rrlClass = iota // an answer (keyed by the query name)
	clsWildcard                 // synthesized from a wildcard (by the wildcard's owner)
	clsNodata                   // NOERROR with no answer (by the query name)
	clsReferral                 // a delegation (by the delegated name: random names below it share one bucket)
	clsNXDomain                 // by the zone: random names share one bucket
	clsError                    // any other rcode (by the zone, or the root when there is none)
	clsLarge                    // a reply of 1024 bytes or more (by the query name)
	clsAny                      // a qtype ANY query
	clsDNSSEC                   // a DNSKEY, RRSIG or DS query
	numRRLClasses
)

var rrlClassNames = [numRRLClasses]string{"positive", "wildcard", "nodata", "referral", "nxdomain", "error", "large", "any", "dnssec"}

func (c rrlClass) String() string {
	if c < numRRLClasses {
		return rrlClassNames[c]
	}
	return "rrlClass(" + strconv.Itoa(int(c)) + ")"
}

// rootName keys errors outside any zone.
var rootName = []byte{0}

// rrlLarge is the reply size from which a response counts as large (Knot's
// RRL_PSIZE_LARGE).
const rrlLarge = 1024

// rrlTag is what a template tells the rate limiter: its zone, and for a
// wildcard synthesis or a referral the name its bucket is keyed by.
type rrlTag struct {
	zone     []byte // the zone's origin, wire format
	owner    []byte // the wildcard owner or the delegation, wire format
	wildcard bool
	referral bool
}

// rrlBucket is one token bucket, kept as a GCRA "theoretical arrival time"
// (ITU-T I.371): the response is allowed when tat - now is within the
// burst tolerance, and then moves tat on by one interval. One word, updated
// by compare-and-swap: no lock. key identifies what the bucket counts.
type rrlBucket struct {
	key atomic.Uint64
	tat atomic.Int64 // nanoseconds on the limiter's clock
}

// rrl is the daemon-wide limiter every shard's handlers share: a fixed
// table of buckets in groups of four (one cache line), indexed by a keyed
// hash of (class, source prefix, name). Two shards racing on one bucket
// both see a consistent word; two keys racing to claim one slot may both
// count in it for a moment: the count is approximate, as in Knot DNS.
type rrl struct {
	cfg      RRLConfig
	v4mask   [4]byte
	v6mask   [16]byte
	interval int64 // nanoseconds per response at the rate
	tau      int64 // burst tolerance: (Rate x Window - 1) intervals
	mask     uint64
	seed     maphash.Seed
	buckets  []rrlBucket
	now      func() int64 // a monotonic clock in nanoseconds
}

func newRRL(c RRLConfig) *rrl {
	size := DefaultRRLTableSize
	if c.TableSize > 0 {
		size = 4
		for size < c.TableSize {
			size <<= 1
		}
	}
	interval := max(int64(time.Second)/int64(c.Rate), 1)
	burst := max(int64(c.Window)/interval, 1) // responses a full bucket allows at once
	r := &rrl{
		cfg:      c,
		interval: interval,
		tau:      (burst - 1) * interval,
		mask:     uint64(size - 1),
		seed:     maphash.MakeSeed(),
		buckets:  make([]rrlBucket, size),
	}
	prefixMask(r.v4mask[:], c.IPv4Prefix)
	prefixMask(r.v6mask[:], c.IPv6Prefix)
	start := time.Now()
	r.now = func() int64 { return int64(time.Since(start)) }
	return r
}

func prefixMask(m []byte, bits int) {
	for i := range m {
		switch {
		case bits >= 8*(i+1):
			m[i] = 0xFF
		case bits > 8*i:
			m[i] = byte(0xFF << (8*(i+1) - bits))
		}
	}
}

// exempt reports whether src is in an exempt prefix.
func (r *rrl) exempt(src netip.Addr) bool {
	for _, p := range r.cfg.Exempt {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// key is the bucket key of a response of class cls for name to src; buf is
// the caller's scratch space (no allocation).
func (r *rrl) key(buf *[2 + 16 + 255]byte, cls rrlClass, src netip.Addr, name []byte) uint64 {
	buf[0] = byte(cls)
	n := 2
	if src.Is4() {
		buf[1] = 4
		a := src.As4()
		for i := range a {
			buf[n+i] = a[i] & r.v4mask[i]
		}
		n += 4
	} else {
		buf[1] = 6
		a := src.As16()
		for i := range a {
			buf[n+i] = a[i] & r.v6mask[i]
		}
		n += 16
	}
	n += copy(buf[n:], name)
	return maphash.Bytes(r.seed, buf[:n]) | 1 // 0 marks a slot never used
}

// allow counts one response at now in key's bucket and reports whether it
// is within the rate.
func (r *rrl) allow(key uint64, now int64) bool {
	b := r.bucket(key, now)
	for {
		old := b.tat.Load()
		tat := max(old, now)
		if tat-now > r.tau {
			return false
		}
		if b.tat.CompareAndSwap(old, tat+r.interval) {
			return true
		}
	}
}

// bucket finds key's bucket in its group of four: its own, else a slot whose
// bucket is full (tat in the past: replacing it loses nothing), else one
// evicted (when all four are busy: a fresh bucket, as after Knot's hash
// collisions).
func (r *rrl) bucket(key uint64, now int64) *rrlBucket {
	g := r.buckets[key&r.mask&^3:][:4]
	free := -1
	for i := range g {
		if g[i].key.Load() == key {
			return &g[i]
		}
		if free < 0 && g[i].tat.Load() <= now {
			free = i
		}
	}
	if free < 0 {
		free = int(key >> 62)
	}
	b := &g[free]
	b.key.Store(key)
	b.tat.Store(now)
	return b
}

// qtypeClass is the class of the qtypes with one of their own: ANY, and
// the DNSSEC types; clsPositive for the others.
func qtypeClass(qtype uint16) rrlClass {
	switch qtype {
	case mdns.TypeANY:
		return clsAny
	case mdns.TypeDNSKEY, mdns.TypeRRSIG, mdns.TypeDS:
		return clsDNSSEC
	}
	return clsPositive
}

// classify is the class of a response and the name its bucket is keyed by
// (Knot DNS's rrl_clsid and rrl_clsname, with referrals keyed by their
// delegation and wildcards by their owner).
func classify(rcode int, t *template, qtype uint16, size int, ancount uint16, qname []byte) (rrlClass, []byte) {
	zone := rootName
	if t != nil && t.rrl != nil {
		zone = t.rrl.zone
	}
	switch {
	case rcode == mdns.RcodeNameError:
		return clsNXDomain, zone
	case rcode != mdns.RcodeSuccess || t == nil:
		return clsError, zone
	case t.rrl != nil && t.rrl.wildcard:
		return clsWildcard, t.rrl.owner
	case qtypeClass(qtype) != clsPositive:
		return qtypeClass(qtype), qname
	case size >= rrlLarge:
		return clsLarge, qname
	case t.rrl != nil && t.rrl.referral:
		return clsReferral, t.rrl.owner
	case ancount == 0:
		return clsNodata, qname
	}
	return clsPositive, qname
}

// clockEvery bounds how many queries share one reading of a clock.
const clockEvery = 64

// batchClock is a clock as a handler reads it: once per batch (Publish
// starts a new one) and at least every clockEvery queries. A reading costs
// tens to hundreds of nanoseconds (more than the rest of the limiter or a
// cookie's hash), and a batch takes microseconds, far below a bucket's
// interval at any sensible rate and a cookie's second.
type batchClock struct {
	v    int64
	uses int // queries since v was read; 0: read it again
}

func (c *batchClock) read(now func() int64) int64 {
	if c.uses == 0 {
		c.v = now()
	}
	c.uses = (c.uses + 1) % clockEvery
	return c.v
}

// rrlVerdict is what the limiter does with a reply.
type rrlVerdict uint8

const (
	rrlPass rrlVerdict = iota // within the rate, or not limited
	rrlDrop                   // limited: no reply
	rrlSlip                   // limited: the reply replaced by an empty TC one or BADCOOKIE
)

// rateLimit passes the UDP reply b to q (answered with rcode from t) through
// the limiter. Within the rate, or from a client with a valid server cookie
// or an exempt address, it goes as it is. Past the rate it is dropped
// (rrlDrop), except every Slip-th, which goes out empty with TC set, or,
// to a client that sent a cookie, as BADCOOKIE with a fresh server cookie
// (as BIND does: the client retries with the cookie and is let through).
func (h *Handler) rateLimit(b, m []byte, q *query, rcode int, t *template, limit int, src netip.Addr) ([]byte, int, rrlVerdict) {
	r := h.srv.rrl
	if q.cookie == cookieValid || r.exempt(src) {
		return b, rcode, rrlPass
	}
	cls, name := classify(rcode, t, q.qtype, len(b), uint16(b[6])<<8|uint16(b[7]), h.name[:q.nameLen])
	if r.allow(r.key(&h.rrlKey, cls, src, name), h.rrlClock.read(r.now)) {
		return b, rcode, rrlPass
	}
	c := &h.c[0]
	c.limited[cls]++
	if r.cfg.Slip == 0 {
		return nil, rcode, rrlDrop
	}
	if h.slips++; h.slips < r.cfg.Slip {
		return nil, rcode, rrlDrop
	}
	h.slips = 0
	c.slipped++
	if q.cookie == cookieClient && q.edns {
		b, _ = h.build(b[:0], m, q, mdns.RcodeBadCookie, nil, limit, 0)
		return b, mdns.RcodeBadCookie, rrlSlip
	}
	b, _ = h.build(b[:0], m, q, rcode, nil, limit, flagTC)
	return b, rcode, rrlSlip
}
