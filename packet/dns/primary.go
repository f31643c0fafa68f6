package dns

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// The primary side (RFC 5936 AXFR, RFC 1995 IXFR, RFC 1996 NOTIFY, RFC
// 8945 TSIG): secondaries allowed by the ACL transfer the zones from a
// TransferServer; a zone whose serial changes (HUP reload, and later a
// transfer in) is recorded in the zone's journal for IXFR and announced
// with NOTIFY to the configured secondaries. Every version change goes
// through Server.zoneChanged.

// PrimaryConfig configures the primary side. Server.EnablePrimary takes
// it before the handlers serve.
type PrimaryConfig struct {
	// Allow lists who may transfer (AXFR, IXFR); nobody when empty.
	Allow []ACLEntry
	// Notify lists the secondaries told of every serial change.
	Notify []NotifyTarget
	// TSIG holds the TSIG keys, in miekg's TsigSecret form: key name
	// (fully qualified, lower case) -> base64 secret. Algorithms are the
	// ones the client uses (HMAC-SHA256 and the other HMACs).
	TSIG map[string]string
	// TSIGAlgorithms gives the algorithm NOTIFY is signed with, by key name
	// (TSIGKeys.Algorithms); a key not in it signs with HMAC-SHA256.
	TSIGAlgorithms map[string]string
	// Log gets one line per transfer sent or cut, per NOTIFY round, and
	// per kind of refused transfer, once (nil: no logging).
	Log *zap.Logger

	// Journal bounds: versions kept per zone (0: 20) and records (deleted
	// plus added) over all of a zone's kept versions (0: 100,000; at least
	// what one change needs, else that change is not kept and IXFR falls
	// back to the full zone).
	JournalVersions int
	JournalRecords  int
	// NotifyTries is how many times one NOTIFY is sent before the round
	// gives up on that secondary (0: 5), the first answer awaited for
	// NotifyTimeout (0: 1s), doubling at each try.
	NotifyTries   int
	NotifyTimeout time.Duration
}

// ACLEntry allows transfers from a source prefix, with a TSIG key, or
// both when both are set.
type ACLEntry struct {
	Prefix netip.Prefix // invalid: any address
	Key    string       // TSIG key name, fully qualified; empty: no key needed
}

// ParseACL reads one --allow-transfer value: a prefix or address
// (192.0.2.0/24, 2001:db8::1), "key:NAME", or both separated by a comma
// ("127.0.0.0/8,key:xfr").
func ParseACL(s string) (ACLEntry, error) {
	var e ACLEntry
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		switch {
		case strings.HasPrefix(part, "key:"):
			k, err := keyName(part[len("key:"):])
			if err != nil || e.Key != "" {
				return ACLEntry{}, fmt.Errorf("%q: want one key:NAME, with NAME a TSIG key name such as key:xfr.example", s)
			}
			e.Key = k
		case e.Prefix.IsValid():
			return ACLEntry{}, fmt.Errorf("%q: one prefix per entry (repeat the flag for more)", s)
		default:
			p, err := parsePrefix(part)
			if err != nil {
				return ACLEntry{}, fmt.Errorf("%q: want PREFIX, key:NAME or PREFIX,key:NAME, e.g. 192.0.2.0/24 or 127.0.0.1,key:xfr", s)
			}
			e.Prefix = p
		}
	}
	return e, nil
}

// String returns the entry as ParseACL reads it.
func (e ACLEntry) String() string {
	var parts []string
	if e.Prefix.IsValid() {
		parts = append(parts, e.Prefix.String())
	}
	if e.Key != "" {
		parts = append(parts, "key:"+strings.TrimSuffix(e.Key, "."))
	}
	return strings.Join(parts, ",")
}

// parsePrefix reads a prefix or an address (a prefix of its full length).
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmapBits is how many prefix bits an IPv4-mapped address loses when
// unmapped.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// keyName checks a TSIG key name and returns it fully qualified, lower case.
func keyName(s string) (string, error) {
	if s == "" || s == "." {
		return "", fmt.Errorf("empty key name")
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", fmt.Errorf("%q: a key name has letters, digits, '-', '_' and dots only", s)
		}
	}
	n := mdns.CanonicalName(s)
	if _, ok := mdns.IsDomainName(n); !ok {
		return "", fmt.Errorf("%q is not a domain name", s)
	}
	return n, nil
}

// NotifyTarget is a secondary told of serial changes, at Addr, with
// NOTIFY signed by Key when set.
type NotifyTarget struct {
	Addr netip.AddrPort
	Key  string
}

// ParseNotify reads one --notify value: HOST:PORT with an IP address
// (127.0.0.1:53, [::1]:5300), optionally followed by ",key:NAME".
func ParseNotify(s string) (NotifyTarget, error) {
	addr, key, hasKey := strings.Cut(s, ",")
	ap, err := netip.ParseAddrPort(strings.TrimSpace(addr))
	if err != nil || ap.Port() == 0 {
		return NotifyTarget{}, fmt.Errorf("%q: want IP:PORT or IP:PORT,key:NAME, e.g. 192.0.2.2:53 or [2001:db8::2]:53,key:xfr", s)
	}
	t := NotifyTarget{Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
	if hasKey {
		k, ok := strings.CutPrefix(strings.TrimSpace(key), "key:")
		if t.Key, err = keyName(k); !ok || err != nil {
			return NotifyTarget{}, fmt.Errorf("%q: after the address, want ,key:NAME with NAME a TSIG key name", s)
		}
	}
	return t, nil
}

// String returns the target as ParseNotify reads it.
func (t NotifyTarget) String() string {
	if t.Key != "" {
		return t.Addr.String() + ",key:" + strings.TrimSuffix(t.Key, ".")
	}
	return t.Addr.String()
}

// primary is the primary side's state, nil in a Server without it.
type primary struct {
	cfg     PrimaryConfig
	log     *zap.Logger
	journal journals
	notify  notifier

	mu        sync.Mutex
	transfers map[transferKey]*atomic.Uint64 // shardd_dns_transfers_total
	logged    map[string]bool                // refusal kinds logged once
}

// EnablePrimary turns on the primary side: transfers to the ACL's
// sources (served by a TransferServer) and NOTIFY on every serial change.
// Every key an ACL entry or notify target names must be in cfg.TSIG. Call
// it before the handlers serve.
func (s *Server) EnablePrimary(cfg PrimaryConfig) error {
	keys := make(map[string]string, len(cfg.TSIG))
	for name, secret := range cfg.TSIG {
		keys[mdns.CanonicalName(name)] = secret // names compare case-insensitively
	}
	cfg.TSIG = keys
	for _, e := range cfg.Allow {
		if e.Key != "" && cfg.TSIG[e.Key] == "" {
			return fmt.Errorf("--allow-transfer %s: no TSIG key named %s (give it in the key file)", e, strings.TrimSuffix(e.Key, "."))
		}
	}
	for _, t := range cfg.Notify {
		if t.Key != "" && cfg.TSIG[t.Key] == "" {
			return fmt.Errorf("--notify %s: no TSIG key named %s (give it in the key file)", t, strings.TrimSuffix(t.Key, "."))
		}
	}
	if cfg.JournalVersions <= 0 {
		cfg.JournalVersions = 20
	}
	if cfg.JournalRecords <= 0 {
		cfg.JournalRecords = 100_000
	}
	if cfg.NotifyTries <= 0 {
		cfg.NotifyTries = 5
	}
	if cfg.NotifyTimeout <= 0 {
		cfg.NotifyTimeout = time.Second
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	p := &primary{cfg: cfg, log: log, transfers: map[transferKey]*atomic.Uint64{}, logged: map[string]bool{}}
	p.journal.init(cfg.JournalVersions, cfg.JournalRecords)
	p.notify.init(p)
	s.primary = p
	return nil
}

// allowed reports whether a transfer from src, signed with the verified
// key (empty: unsigned), is allowed.
func (p *primary) allowed(src netip.Addr, key string) bool {
	src = src.Unmap()
	for _, e := range p.cfg.Allow {
		if e.Prefix.IsValid() && !e.Prefix.Contains(src) {
			continue
		}
		if e.Key != "" && e.Key != key {
			continue
		}
		return true
	}
	return false
}

// zoneChanged is the one place a new version of a zone comes in (old nil:
// a zone new to this server; new nil: a zone no longer served). It records
// the difference in the zone's journal for IXFR and sends NOTIFY when the
// serial changed. Reload calls it; so does a transfer in.
func (s *Server) zoneChanged(old, new *Zone) {
	p := s.primary
	if p == nil || old == new {
		return
	}
	if new == nil {
		p.journal.drop(old.Origin)
		return
	}
	p.journal.record(old, new)
	if old == nil || old.Serial != new.Serial {
		p.notify.send(new)
	}
}

// Close stops the primary side's NOTIFY rounds in progress and waits for
// them to end.
func (s *Server) Close() {
	if s.primary != nil {
		s.primary.notify.close()
	}
}

// transferKey is one series of shardd_dns_transfers_total.
type transferKey struct{ zone, typ, result string }

// Results of an outgoing transfer (the result label).
const (
	xfrSent     = "sent"     // the whole transfer was written (IXFR: the differences)
	xfrFull     = "full"     // IXFR answered with the full zone (serial not in the journal)
	xfrUpToDate = "uptodate" // IXFR answered with the current SOA only
	xfrRefused  = "refused"  // not allowed by the ACL
	xfrBadKey   = "badkey"   // TSIG did not verify (unknown key, bad MAC, bad time): NOTAUTH
	xfrCut      = "cut"      // broken off mid-way (client gone, write timeout); not "failed", the word of a transfer in
)

// count adds one transfer to shardd_dns_transfers_total. zone is always a
// zone this server serves, so the series stay bounded.
func (p *primary) count(zone string, qtype uint16, result string) {
	k := transferKey{zone, strings.ToLower(mdns.TypeToString[qtype]), result}
	p.mu.Lock()
	c := p.transfers[k]
	if c == nil {
		c = new(atomic.Uint64)
		p.transfers[k] = c
	}
	p.mu.Unlock()
	c.Add(1)
}

// transferCounts returns the counters, sorted, for the scrape.
func (p *primary) transferCounts() ([]transferKey, []uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]transferKey, 0, len(p.transfers))
	for k := range p.transfers {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		return a.zone+"\x00"+a.typ+"\x00"+a.result < b.zone+"\x00"+b.typ+"\x00"+b.result
	})
	vals := make([]uint64, len(keys))
	for i, k := range keys {
		vals[i] = p.transfers[k].Load()
	}
	return keys, vals
}

// logOnce logs a refusal kind the first time it happens (never per query);
// the transfers counter counts the rest.
func (p *primary) logOnce(kind, msg string, fields ...zap.Field) {
	p.mu.Lock()
	seen := p.logged[kind]
	p.logged[kind] = true
	p.mu.Unlock()
	if !seen {
		p.log.Warn(msg, append(fields, zap.String("note", "logged once; shardd_dns_transfers_total counts every one"))...)
	}
}

var descZoneInfo = prometheus.NewDesc("shardd_dns_zone_info",
	"Each zone being served, with where its current version came from: file (a master file) or transfer; always 1.",
	[]string{"zone", "source"}, nil)

// collectPrimary sends the zones' sources and the transfer counts.
func (s *Server) collectPrimary(ch chan<- prometheus.Metric) {
	for _, z := range s.zones.Load().List {
		ch <- prometheus.MustNewConstMetric(descZoneInfo, prometheus.GaugeValue, 1, z.Origin, z.Source)
	}
	if s.primary == nil {
		return
	}
	keys, vals := s.primary.transferCounts()
	for i, k := range keys {
		ch <- prometheus.MustNewConstMetric(descTransfers, prometheus.CounterValue, float64(vals[i]), k.zone, k.typ, k.result)
	}
}
