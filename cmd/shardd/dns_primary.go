package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/shardd/shardd/packet/dns"
)

// primaryOptions are the flags of the DNS primary side: zone transfers out
// and NOTIFY (issue 15).
type primaryOptions struct {
	xfrListen string
	allow     stringList
	notify    stringList
	xfrConns  int

	acl     []dns.ACLEntry
	targets []dns.NotifyTarget
}

// primaryFlags adds them.
func primaryFlags(fs *flag.FlagSet, o *options) {
	p := &o.dns.primary
	fs.StringVar(&p.xfrListen, "xfr-listen", "", "with --handler dns: serve zone transfers (AXFR, IXFR) over TCP on this address, e.g. 127.0.0.1:53 beside --proto udp on the same port, to the sources --allow-transfer names; it answers other queries too")
	fs.Var(&p.allow, "allow-transfer", "with --xfr-listen: who may transfer the zones: a prefix or address, key:NAME (a TSIG key), or PREFIX,key:NAME for both (repeat for more; default nobody: every transfer REFUSED)")
	fs.Var(&p.notify, "notify", "with --handler dns: a secondary to send NOTIFY to when a zone's serial changes (HUP), as IP:PORT or IP:PORT,key:NAME to sign it (repeat for more)")
	fs.IntVar(&p.xfrConns, "xfr-max-conns", 64, "with --xfr-listen: TCP connections served at once there; more are closed at accept")
}

// checkPrimary parses them (from checkDNS).
func checkPrimary(o *options) error {
	p := &o.dns.primary
	p.acl, p.targets = nil, nil
	for _, a := range p.allow {
		e, err := dns.ParseACL(a)
		if err != nil {
			return usagef("--allow-transfer %v", err)
		}
		p.acl = append(p.acl, e)
	}
	for _, n := range p.notify {
		t, err := dns.ParseNotify(n)
		if err != nil {
			return usagef("--notify %v", err)
		}
		p.targets = append(p.targets, t)
	}
	for _, e := range p.acl {
		if err := needKeyFile(&o.dns, "allow-transfer", e.String(), e.Key); err != nil {
			return err
		}
	}
	for _, t := range p.targets {
		if err := needKeyFile(&o.dns, "notify", t.String(), t.Key); err != nil {
			return err
		}
	}
	if len(p.acl) > 0 && p.xfrListen == "" {
		return usagef("--allow-transfer needs --xfr-listen ADDR, where the transfers are served (e.g. --xfr-listen 127.0.0.1:53 with --proto udp)")
	}
	if p.xfrConns < 1 {
		return usagef("--xfr-max-conns %d: want at least 1", p.xfrConns)
	}
	return nil
}

// xfrService is the primary side of a dnsService: the transfer server and
// the NOTIFY rounds.
type xfrService struct {
	ts *dns.TransferServer
}

// startPrimary turns on the primary side of srv when a flag asks for it
// and starts the transfer server; keys are --tsig-keys' (those ACL entries
// and NOTIFY targets name).
func startPrimary(srv *dns.Server, o *options, keys dns.TSIGKeys, log *zap.Logger) (*xfrService, error) {
	p := &o.dns.primary
	if p.xfrListen == "" && len(p.targets) == 0 {
		return nil, nil
	}
	err := srv.EnablePrimary(dns.PrimaryConfig{Allow: p.acl, Notify: p.targets, TSIG: keys.Secrets(),
		TSIGAlgorithms: keys.Algorithms(), Log: log})
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	x := &xfrService{}
	if p.xfrListen == "" {
		return x, nil
	}
	ln, err := listenXFR(p.xfrListen)
	if err != nil {
		return nil, errors.New("cannot serve zone transfers on " + p.xfrListen + ": " + err.Error() + " (pick a free TCP address for --xfr-listen; with --proto udp,tcp on the same port, give it another port)")
	}
	x.ts = srv.NewTransferServer(ln, dns.TransferOptions{MaxConns: p.xfrConns, IdleTimeout: o.idle, WriteTimeout: o.writeTO})
	x.ts.Start()
	log.Info("serving zone transfers", zap.String("addr", ln.Addr().String()), zap.Stringers("allow", p.acl),
		zap.Stringers("notify", p.targets))
	return x, nil
}

// close stops the transfer server (its connections are told to close
// within 5 s) and the NOTIFY rounds.
func (x *xfrService) close(srv *dns.Server) {
	if x == nil {
		return
	}
	if x.ts != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = x.ts.Stop(ctx)
		cancel()
	}
	srv.Close()
}

// listenXFR listens on addr with SO_REUSEPORT where there is one, so the
// next process of an upgrade (USR2) binds it while this one still serves.
func listenXFR(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: reusePort}
	return lc.Listen(context.Background(), "tcp", addr)
}
