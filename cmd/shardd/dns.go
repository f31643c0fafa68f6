package main

import (
	"context"
	"flag"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/packet/dns"
)

// dnsOptions are the flags of --handler dns.
type dnsOptions struct {
	zones stringList
}

// dnsFlags adds the flags of --handler dns.
func dnsFlags(fs *flag.FlagSet, o *options) {
	fs.Var(&o.dns.zones, "zone", "with --handler dns: a zone to serve, as an RFC 1035 master file, or a directory whose *.zone files are served (repeat for more; HUP reloads them all and re-reads directories)")
}

// checkDNS checks them when --handler dns is chosen.
func checkDNS(o *options) error {
	if len(o.dns.zones) == 0 {
		return usagef("--handler dns needs at least one --zone FILE, e.g. --zone testdata/dns/example.com.zone")
	}
	return nil
}

// dnsService is the authoritative DNS handler: zones loaded at start,
// reloaded atomically on HUP.
type dnsService struct {
	srv *dns.Server
	log *zap.Logger
}

func newDNSService(o *options, log *zap.Logger) (service, error) {
	srv, err := dns.NewServer(o.dns.zones)
	if err != nil {
		return nil, err
	}
	s := &dnsService{srv: srv, log: log}
	s.logZones("zones loaded", srv.Zones())
	if !strings.Contains(o.proto.value, "tcp") {
		log.Warn("DNS over UDP only: clients that get a truncated answer (TC) retry over TCP and will find nothing there",
			zap.String("fix", "add --proto udp,tcp"))
	}
	return s, nil
}

func (s *dnsService) logZones(msg string, zs *dns.Zones) {
	for _, z := range zs.List {
		s.log.Info(msg, zap.String("zone", z.Origin), zap.String("file", z.File), zap.Uint32("serial", z.Serial), zap.Int("records", z.Count))
	}
}

func (s *dnsService) NewHandler(shard int) packet.Handler { return s.srv.NewHandler(shard) }

// Reload re-reads every zone file; the new set replaces the old only if
// every file loads.
func (s *dnsService) Reload() error {
	zs, err := s.srv.Reload()
	if err != nil {
		return err
	}
	s.logZones("zone reloaded", zs)
	return nil
}

func (s *dnsService) Reopen() error                      { return errNothingToReopen }
func (s *dnsService) Collectors() []prometheus.Collector { return []prometheus.Collector{s.srv} }
func (s *dnsService) Close(context.Context) error        { return nil }
