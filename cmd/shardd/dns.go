package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/packet/dns"
)

// dnsOptions are the flags of --handler dns.
type dnsOptions struct {
	zones        stringList
	rrl          dns.RRLConfig
	rrlExempt    stringList
	cookies      bool
	cookieRotate time.Duration
	secondaries  stringList
	parsed       []dns.Secondary // secondaries, checked
	zoneDir      string
	tsigKeys     string
	primary      primaryOptions
}

// dnsFlags adds the flags of --handler dns.
func dnsFlags(fs *flag.FlagSet, o *options) {
	d := &o.dns
	fs.Var(&d.zones, "zone", "with --handler dns: a zone to serve, as an RFC 1035 master file, or a directory whose *.zone files are served (repeat for more; HUP reloads them all and re-reads directories)")
	fs.IntVar(&d.rrl.Rate, "rrl-rate", 0, "with --handler dns: response rate limiting, UDP responses per second per source prefix, response class and name (0: off)")
	fs.IntVar(&d.rrl.Slip, "rrl-slip", 1, "with --rrl-rate: every Nth limited response goes out empty with TC set, so real clients retry over TCP (0: drop them all, 1: slip them all)")
	fs.DurationVar(&d.rrl.Window, "rrl-window", time.Second, "with --rrl-rate: a quiet source may send rate x window responses at once before the rate applies")
	fs.IntVar(&d.rrl.IPv4Prefix, "rrl-ipv4-prefix", 24, "with --rrl-rate: IPv4 sources in one prefix of this length share their limit")
	fs.IntVar(&d.rrl.IPv6Prefix, "rrl-ipv6-prefix", 56, "with --rrl-rate: IPv6 sources in one prefix of this length share their limit")
	fs.Var(&d.rrlExempt, "rrl-exempt", "with --rrl-rate: a source prefix never limited, e.g. 192.0.2.0/24 (repeat for more)")
	fs.BoolVar(&d.cookies, "dns-cookies", false, "with --handler dns: answer DNS cookies (RFC 7873, RFC 9018), off by default as in Knot DNS; a client with a valid server cookie is exempt from --rrl-rate")
	fs.Var(&d.secondaries, "secondary", "with --handler dns: a zone transferred from primaries, "+secondaryFlagForm+" (repeat for more): AXFR/IXFR over TCP, refreshed by its SOA timers and at NOTIFY from those addresses, signed with the TSIG key NAME from --tsig-keys")
	fs.StringVar(&d.zoneDir, "zone-dir", "", "with --secondary: a directory (owned by the daemon's user, not writable by others) where a copy of each transferred zone is kept, served at start before the first refresh")
	fs.StringVar(&d.tsigKeys, "tsig-keys", "", "with --secondary, --allow-transfer key:NAME or --notify ADDR,key:NAME: the TSIG key file, as tsig-keygen or keymgr -t writes it (mode 0600 or 0640)")
	fs.DurationVar(&d.cookieRotate, "dns-cookie-secret-rotate", time.Hour, "with --dns-cookies: how often the server cookie secret is replaced (the previous one stays valid)")
	primaryFlags(fs, o)
}

// checkDNS checks them when --handler dns is chosen.
func checkDNS(o *options) error {
	d := &o.dns
	if err := checkSecondaries(d); err != nil {
		return err
	}
	if len(d.zones) == 0 && len(d.parsed) == 0 {
		return usagef("--handler dns needs at least one --zone FILE or --secondary ZONE@ADDR, e.g. --zone testdata/dns/example.com.zone")
	}
	d.rrl.Exempt = nil
	for _, e := range d.rrlExempt {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			a, aerr := netip.ParseAddr(e)
			if aerr != nil {
				return usagef("--rrl-exempt %q: not a prefix or address; give one like 192.0.2.0/24 or 2001:db8::/32", e)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		d.rrl.Exempt = append(d.rrl.Exempt, p.Masked())
	}
	if err := d.rrl.Validate(); err != nil {
		return usagef("%v", err)
	}
	if d.cookies && d.cookieRotate < time.Minute {
		return usagef("--dns-cookie-secret-rotate %v: want at least 1m (clients keep a cookie for one period)", d.cookieRotate)
	}
	return checkPrimary(o)
}

// dnsService is the authoritative DNS handler: zones loaded at start,
// reloaded atomically on HUP.
type dnsService struct {
	srv  *dns.Server
	xfr  *xfrService // the primary side, nil without its flags
	log  *zap.Logger
	stop chan struct{}
	done sync.WaitGroup
}

func newDNSService(o *options, log *zap.Logger) (service, error) {
	srv, err := dns.NewServer(o.dns.zones)
	if err != nil {
		return nil, err
	}
	if err := srv.EnableRRL(o.dns.rrl); err != nil {
		return nil, err
	}
	if o.dns.cookies {
		if err := srv.EnableCookies(); err != nil {
			return nil, fmt.Errorf("DNS cookies: server secret: %v", err)
		}
	}
	keys, err := loadTSIGKeys(o)
	if err != nil {
		return nil, err
	}
	if len(o.dns.parsed) > 0 {
		err = srv.EnableSecondaries(dns.SecondaryConfig{Zones: o.dns.parsed, Dir: o.dns.zoneDir, Keys: keys, Log: log})
		if err != nil {
			return nil, err
		}
	}
	s := &dnsService{srv: srv, log: log, stop: make(chan struct{})}
	s.logZones("zones loaded", srv.Zones())
	if s.xfr, err = startPrimary(srv, o, keys, log); err != nil {
		return nil, err
	}
	if len(o.dns.parsed) > 0 {
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			srv.RunSecondaries(s.stop)
		}()
	}
	if o.dns.rrl.Rate > 0 || o.dns.cookies {
		s.done.Add(1)
		go s.tick(o.dns.rrl.Rate > 0, o.dns.cookies, o.dns.cookieRotate)
	}
	if !strings.Contains(o.proto.value, "tcp") && o.dns.primary.xfrListen == "" {
		log.Warn("DNS over UDP only: clients that get a truncated answer (TC) retry over TCP and will find nothing there",
			zap.String("fix", "add --proto udp,tcp"))
	}
	return s, nil
}

// loadTSIGKeys loads the --tsig-keys file; none without the flag.
func loadTSIGKeys(o *options) (dns.TSIGKeys, error) {
	if o.dns.tsigKeys == "" {
		return nil, nil
	}
	return dns.LoadTSIGKeys(o.dns.tsigKeys)
}

func (s *dnsService) logZones(msg string, zs *dns.Zones) {
	for _, z := range zs.List {
		s.log.Info(msg, zap.String("zone", z.Origin), zap.String("source", z.Source), zap.String("file", z.File), zap.Uint32("serial", z.Serial), zap.Int("records", z.Count))
	}
}

func (s *dnsService) NewHandler(shard int) packet.Handler { return s.srv.NewHandler(shard) }

// Reload re-reads every zone file; each zone takes its new version on its
// own. A file that fails is logged (its zone's old version keeps serving);
// if every file failed, the error goes back to the signal handler.
func (s *dnsService) Reload() error {
	zs, err := s.srv.Reload()
	if zs == nil {
		return err
	}
	var re *dns.ReloadError
	if errors.As(err, &re) {
		for _, f := range re.Failures {
			fields := []zap.Field{zap.String("file", f.File), zap.Error(f.Err)}
			if f.Kept != nil {
				fields = append(fields, zap.String("zone", f.Kept.Origin), zap.Uint32("serial", f.Kept.Serial))
			}
			s.log.Error("zone reload failed; the zone's previous version keeps serving (none if it had none)", fields...)
		}
	}
	s.logZones("zone reloaded", zs)
	return nil
}

func (s *dnsService) Reopen() error                      { return errNothingToReopen }
func (s *dnsService) Collectors() []prometheus.Collector { return []prometheus.Collector{s.srv} }

// Close stops the ticker, the secondary zones' refreshes, then the
// transfer server and the NOTIFY rounds.
func (s *dnsService) Close(context.Context) error {
	close(s.stop)
	s.done.Wait() // no transfer in swaps a zone (and starts a NOTIFY round) after this
	s.xfr.close(s.srv)
	return nil
}

// tick rotates the cookie secret every rotate and, with RRL on, logs once a
// minute what the limiter did in that minute, if anything (never per packet).
func (s *dnsService) tick(rrl, cookies bool, rotate time.Duration) {
	defer s.done.Done()
	minute := time.NewTicker(time.Minute)
	defer minute.Stop()
	var rotation <-chan time.Time
	if cookies {
		r := time.NewTicker(rotate)
		defer r.Stop()
		rotation = r.C
	}
	last := s.srv.RRLStats()
	for {
		select {
		case <-s.stop:
			return
		case <-rotation:
			if err := s.srv.RotateCookieSecret(); err != nil {
				s.log.Error("DNS cookie secret not rotated; the current one stays", zap.Error(err))
			}
		case <-minute.C:
			if rrl {
				last = s.logRRL(last)
			}
		}
	}
}

// logRRL logs the responses limited since last, if any, and returns the
// new totals.
func (s *dnsService) logRRL(last dns.RRLStats) dns.RRLStats {
	now := s.srv.RRLStats()
	var fields []zap.Field
	var total uint64
	for _, cls := range slices.Sorted(maps.Keys(now.Limited)) {
		if d := now.Limited[cls] - last.Limited[cls]; d > 0 {
			fields = append(fields, zap.Uint64(cls, d))
			total += d
		}
	}
	if total > 0 {
		fields = append([]zap.Field{zap.Uint64("limited", total), zap.Uint64("slipped", now.Slipped-last.Slipped)}, fields...)
		s.log.Warn("rate limiting DNS responses (last minute, by class)", fields...)
	}
	return now
}
