package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/shard"
)

// tlsOptions are the TLS flags: --tls ADDR (repeatable) serves TLS over TCP
// on ADDR, beside the plain ADDRs, with the --tls-cert/--tls-key pair.
type tlsOptions struct {
	addrs     stringList    // --tls
	cert, key string        // --tls-cert, --tls-key
	clientCA  string        // --tls-client-ca: mutual TLS
	handshake time.Duration // --tls-handshake-timeout
}

// certPoll is how often the certificate files are looked at for a change.
const certPoll = 5 * time.Second

// alpnOf is the ALPN protocol each handler's clients ask for over TLS
// (RFC 7858 section 3.2 registers "dot"; RFC 5425 syslog has none).
var alpnOf = map[string][]string{"dns": {"dot"}}

func addTLSFlags(fs *flag.FlagSet, o *options) {
	fs.Var(&o.tls.addrs, "tls", "also serve TLS over TCP on this address (repeat for more; e.g. --tls :853 for DNS over TLS, --tls :6514 for syslog over TLS); TLS 1.2 and 1.3, one listener per shard, served by a goroutine per connection")
	fs.StringVar(&o.tls.cert, "tls-cert", "", "with --tls: the PEM certificate chain (leaf first); reloaded on HUP and when the file changes")
	fs.StringVar(&o.tls.key, "tls-key", "", "with --tls: the PEM private key of --tls-cert")
	fs.StringVar(&o.tls.clientCA, "tls-client-ca", "", "with --tls: require a client certificate signed by a CA in this PEM file (mutual TLS); syslog records get its subject as tls_peer")
	fs.DurationVar(&o.tls.handshake, "tls-handshake-timeout", shard.DefaultTLSHandshakeTimeout, "with --tls: cut a connection that has not finished its TLS handshake by then")
}

// checkTLSFlags checks the TLS flags: addresses, the pair they need, and
// flags that mean nothing without --tls.
func checkTLSFlags(o *options) error {
	for i, a := range o.tls.addrs {
		if _, _, err := shard.ParseAddr(a); err != nil {
			return usagef("--tls %s: %v", a, err)
		}
		if slices.Contains(o.tls.addrs[:i], a) {
			return usagef("--tls %s is given twice; give each address once", a)
		}
		if slices.Contains(o.addrs, a) { // a listener is named by its address
			return usagef("address %s is given both plain and as --tls; TLS needs a port of its own (e.g. :853)", a)
		}
	}
	if len(o.tls.addrs) == 0 {
		for _, name := range []string{"tls-cert", "tls-key", "tls-client-ca", "tls-handshake-timeout"} {
			if o.given[name] {
				return usagef("--%s needs --tls ADDR", name)
			}
		}
		return nil
	}
	if o.tls.cert == "" || o.tls.key == "" {
		return usagef("--tls needs --tls-cert FILE and --tls-key FILE (PEM)")
	}
	if o.tls.handshake <= 0 {
		return usagef("--tls-handshake-timeout %v: must be positive, e.g. 10s", o.tls.handshake)
	}
	return nil
}

// allAddrs is every address served: the plain ones, then the --tls ones
// (the order of the groups, and of their sockets in an upgrade).
func (o *options) allAddrs() []string {
	return append(slices.Clip(o.addrs), o.tls.addrs...)
}

// tlsShardConfig makes cfg, the flags' Config for a --tls address, a TLS
// one serving conf: TCP only, on goroutines.
func (o *options) tlsShardConfig(cfg *shard.Config, conf *tls.Config) {
	cfg.UDP, cfg.TCP = false, true
	cfg.TCPShape = shard.TCPShapeGoroutines
	cfg.TLS = conf
	cfg.TLSHandshakeTimeout = o.tls.handshake
}

// serverTLS is the one tls.Config of every --tls address (so they share
// session ticket keys): the handler's ALPN protocol and, with
// --tls-client-ca, a verified client certificate required. Nil without
// --tls.
func (o *options) serverTLS(certs *shard.CertStore) (*tls.Config, error) {
	if certs == nil {
		return nil, nil
	}
	conf := shard.ServerTLS(certs, alpnOf[o.handler.value]...)
	if o.tls.clientCA == "" {
		return conf, nil
	}
	pem, err := os.ReadFile(o.tls.clientCA)
	if err != nil {
		return nil, fmt.Errorf("--tls-client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-client-ca %s: no PEM certificate in it (give the CA certificates that sign client certificates)", o.tls.clientCA)
	}
	conf.ClientCAs, conf.ClientAuth = pool, tls.RequireAndVerifyClientCert
	return conf, nil
}

// loadCerts loads the --tls pair (nil without --tls) and logs it.
func loadCerts(o *options, log *zap.Logger) (*shard.CertStore, error) {
	if len(o.tls.addrs) == 0 {
		return nil, nil
	}
	certs, err := shard.LoadCerts(o.tls.cert, o.tls.key)
	if err != nil {
		return nil, err
	}
	logCert(log, "TLS certificate loaded", certs)
	return certs, nil
}

// logCert logs the pair in use; one that has expired is served (a
// client may accept it) but warned about.
func logCert(log *zap.Logger, msg string, certs *shard.CertStore) {
	log.Info(msg, zap.String("serial", certs.Serial()), zap.Time("not_after", certs.NotAfter()))
	if time.Now().After(certs.NotAfter()) {
		log.Warn("the TLS certificate has expired: clients that check it refuse it", zap.Time("not_after", certs.NotAfter()))
	}
}

// reloadCerts loads the --tls pair again (HUP); a pair that does not load
// leaves the one in use serving.
func (srv *server) reloadCerts() {
	if srv.certs == nil {
		return
	}
	if err := srv.certs.Reload(); err != nil {
		srv.log.Error("TLS certificate not reloaded; the previous one keeps serving", zap.Error(err))
		return
	}
	logCert(srv.log, "TLS certificate reloaded", srv.certs)
}

// watchCerts reloads the pair when its files change, until stop closes.
func (srv *server) watchCerts(stop <-chan struct{}) {
	if srv.certs == nil {
		return
	}
	go srv.certs.Watch(certPoll, stop, func(_ string, err error) {
		if err != nil {
			srv.log.Error("TLS certificate files changed but do not load; the previous certificate keeps serving", zap.Error(err))
			return
		}
		logCert(srv.log, "TLS certificate reloaded (files changed)", srv.certs)
	})
}

// certCollectors is the certificate's expiry as a metric (none without --tls).
func certCollectors(certs *shard.CertStore) []prometheus.Collector {
	if certs == nil {
		return nil
	}
	return []prometheus.Collector{prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shardd_tls_cert_expiry_seconds",
		Help: "When the TLS certificate in use (--tls-cert) expires, in seconds since the epoch; alert well before time() reaches it.",
	}, func() float64 { return float64(certs.NotAfter().Unix()) })}
}

// protoField is the proto of the listening line: the --proto flag, or tls.
func protoField(in shard.Info, o *options) string {
	if in.TLS {
		return "tls"
	}
	return o.proto.value
}

// tlsSummaryFields are a TLS shard's handshakes in its summary line: by
// result (those that happened), resumed, and by version.
func tlsSummaryFields(s metrics.Snapshot) []zap.Field {
	if s.Proto != "tls" {
		return nil
	}
	hs := map[string]uint64{}
	for r, n := range s.TLSHandshakes {
		if n > 0 {
			hs[metrics.TLSResult(r).String()] = n
		}
	}
	return []zap.Field{zap.Any("tls_handshakes", hs), zap.Uint64("tls_resumed", s.TLSResumed),
		zap.Uint64("tls12", s.TLSVersions[metrics.TLS12]), zap.Uint64("tls13", s.TLSVersions[metrics.TLS13])}
}
