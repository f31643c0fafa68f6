package main

import (
	"crypto/tls"
	"flag"
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
	rotation  time.Duration // --tls-ticket-rotation
}

// certPoll is how often the certificate files are looked at for a change.
const certPoll = 5 * time.Second

// alpnOf is the ALPN protocol each handler's clients ask for over TLS
// (RFC 7858 section 3.2 registers "dot"; RFC 5425 syslog has none).
var alpnOf = map[string][]string{"dns": {"dot"}}

func addTLSFlags(fs *flag.FlagSet, o *options) {
	fs.Var(&o.tls.addrs, "tls", "also serve TLS over TCP on this address (repeat for more; e.g. --tls :853 for DNS over TLS, --tls :6514 for syslog over TLS); TLS 1.2 and 1.3, one listener per shard, served by a goroutine per connection")
	fs.StringVar(&o.tls.cert, "tls-cert", "", "with --tls: the PEM certificate chain (leaf first); reloaded on HUP and when the file changes")
	fs.StringVar(&o.tls.key, "tls-key", "", "with --tls: the PEM private key of --tls-cert (mode 0600 or 0640, owned by this user or root)")
	fs.StringVar(&o.tls.clientCA, "tls-client-ca", "", "with --tls: require a client certificate signed by a CA in this PEM file (mutual TLS); syslog records get its subject as tls_peer")
	fs.DurationVar(&o.tls.handshake, "tls-handshake-timeout", shard.DefaultTLSHandshakeTimeout, "with --tls: cut a connection that has not finished its TLS handshake by then")
	fs.DurationVar(&o.tls.rotation, "tls-ticket-rotation", shard.DefaultTicketRotation, "with --tls: make a new session ticket key this often; a ticket resumes for at least this long (the previous key still decrypts), on every shard and after an upgrade")
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
		if name := o.firstGiven("tls-cert", "tls-key", "tls-client-ca", "tls-handshake-timeout", "tls-ticket-rotation"); name != "" {
			return usagef("--%s needs --tls ADDR", name)
		}
		return nil
	}
	if o.tls.cert == "" || o.tls.key == "" {
		return usagef("--tls needs --tls-cert FILE and --tls-key FILE (PEM)")
	}
	if o.tls.handshake <= 0 {
		return usagef("--tls-handshake-timeout %v: must be positive, e.g. 10s", o.tls.handshake)
	}
	if o.tls.rotation < time.Second {
		return usagef("--tls-ticket-rotation %v: must be at least 1s, e.g. 1h", o.tls.rotation)
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

// tlsState is what the --tls addresses serve with: the pair, the client
// CAs (nil without --tls-client-ca), the session ticket keys and the one
// tls.Config of them all (so they share the keys). Nil without --tls.
type tlsState struct {
	certs   *shard.CertStore
	cas     *shard.CAStore
	tickets *shard.TicketKeys
	conf    *tls.Config
}

// loadTLS loads the --tls pair and client CAs and makes the Config: the
// handler's ALPN protocol and, with --tls-client-ca, a verified client
// certificate required. The ticket keys are inh's (an upgrade) when they
// come with it, else new. Nil without --tls.
func loadTLS(o *options, log *zap.Logger, inh *inherited) (*tlsState, error) {
	if len(o.tls.addrs) == 0 {
		if inh != nil {
			clear(inh.ticketKeys) // handed over, but no --tls here
		}
		return nil, nil
	}
	st := &tlsState{}
	var err error
	if st.certs, err = shard.LoadCerts(o.tls.cert, o.tls.key); err != nil {
		return nil, err
	}
	st.conf = shard.ServerTLS(st.certs, alpnOf[o.handler.value]...)
	if o.tls.clientCA != "" {
		if st.cas, err = shard.LoadClientCAs(o.tls.clientCA); err != nil {
			return nil, err // before any log line: a failed start is one line
		}
		st.cas.Require(st.conf)
	}
	logCert(log, "TLS certificate loaded", st.certs)
	if st.tickets, err = shard.NewTicketKeys(st.conf); err != nil {
		return nil, err
	}
	if inh != nil && inh.ticketKeysErr != nil {
		log.Warn("session tickets of the previous process do not resume here; new keys", zap.Error(inh.ticketKeysErr))
	}
	if inh != nil && inh.ticketKeys != nil {
		if err := st.tickets.Restore(inh.ticketKeys); err != nil {
			log.Warn("session tickets of the previous process do not resume here; new keys", zap.Error(err))
		} else {
			log.Info("session ticket keys taken over from the previous process", zap.Time("made", st.tickets.Made()))
		}
		clear(inh.ticketKeys)
	}
	return st, nil
}

// logCert logs the pair in use; one that has expired is served (a
// client may accept it) but warned about.
func logCert(log *zap.Logger, msg string, certs *shard.CertStore) {
	log.Info(msg, zap.String("serial", certs.Serial()), zap.Time("not_after", certs.NotAfter()))
	if time.Now().After(certs.NotAfter()) {
		log.Warn("the TLS certificate has expired: clients that check it refuse it", zap.Time("not_after", certs.NotAfter()))
	}
}

// config is the Config of the --tls addresses; nil without --tls.
func (st *tlsState) config() *tls.Config {
	if st == nil {
		return nil
	}
	return st.conf
}

// ticketKeys are the session ticket keys an upgrade hands over; nil
// without --tls.
func (st *tlsState) ticketKeys() *shard.TicketKeys {
	if st == nil {
		return nil
	}
	return st.tickets
}

// reload loads the --tls pair and client CAs again (HUP); what does not
// load leaves what is in use serving.
func (st *tlsState) reload(log *zap.Logger) {
	if st == nil {
		return
	}
	if err := st.certs.Reload(); err != nil {
		log.Error("TLS certificate not reloaded; the previous one keeps serving", zap.Error(err))
	} else {
		logCert(log, "TLS certificate reloaded", st.certs)
	}
	if st.cas == nil {
		return
	}
	if err := st.cas.Reload(); err != nil {
		log.Error("TLS client CAs not reloaded; the previous ones keep verifying", zap.Error(err))
		return
	}
	log.Info("TLS client CAs reloaded", zap.Int("certificates", st.cas.Certificates()))
}

// run reloads the pair and the client CAs when their files change, and
// rotates the session ticket keys, until stop closes.
func (st *tlsState) run(o *options, log *zap.Logger, stop <-chan struct{}) {
	if st == nil {
		return
	}
	go st.certs.Watch(certPoll, stop, func(err error) {
		if err != nil {
			log.Error("TLS certificate files changed but do not load; the previous certificate keeps serving", zap.Error(err))
			return
		}
		logCert(log, "TLS certificate reloaded (files changed)", st.certs)
	})
	if st.cas != nil {
		go st.cas.Watch(certPoll, stop, func(err error) {
			if err != nil {
				log.Error("TLS client CA file changed but does not load; the previous CAs keep verifying", zap.Error(err))
				return
			}
			log.Info("TLS client CAs reloaded (file changed)", zap.Int("certificates", st.cas.Certificates()))
		})
	}
	go st.tickets.Run(o.tls.rotation, stop, func(err error) {
		log.Error("session ticket key not rotated; the current one stays", zap.Error(err))
	})
}

// certCollectors is the certificate's expiry as a metric (none without --tls).
func certCollectors(st *tlsState) []prometheus.Collector {
	if st == nil {
		return nil
	}
	certs := st.certs
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
