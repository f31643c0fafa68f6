package shard

// TLS on the stream shards (DNS over TLS, RFC 7858; syslog over TLS, RFC
// 5425).
//
// A TLS address is a group of its own: Config.TLS set, TCP only. Each shard
// owns one SO_REUSEPORT listener on it, as for plain TCP, and the handler's
// framing runs inside TLS unchanged. TLS runs on the goroutine shape only:
// crypto/tls works on a net.Conn, and a record layer of our own on the epoll
// loop is what the issue rules out. Listen forces TCPShapeGoroutines for a
// TLS group (TCPShapeLoop given is refused), and Info.TLS says so.
//
// Each accepted connection is wrapped in tls.Server and handshakes within
// Config.TLSHandshakeTimeout before any frame is served; the handshake's
// outcome is counted per shard (metrics.Counts.TLSHandshakes by
// metrics.TLSResult, TLSResumed). --max-conns, the per-address limit and
// eviction apply from the accept on, so a connection stalled in its
// handshake holds a slot only until the timeout or an eviction. The
// per-connection and per-shard memory bounds cover the plaintext buffers
// as for TCP; crypto/tls's own record buffers (up to about 2 x 16 KiB per
// connection while a record is in flight) are outside them.
//
// Certificates come from a CertStore: tls.Config.GetCertificate reads an
// atomic pointer, so a reload swaps the pair for new handshakes at once and
// connections already up keep theirs. A pair that does not load (or whose
// key does not match, or whose key file other users may read) keeps the
// old one serving. A CAStore does the same for
// the client CAs of mutual TLS. Session tickets are encrypted with the
// TicketKeys of the one tls.Config a process shares among its shards and
// TLS groups, so a client resumes on any shard; the keys rotate on a
// schedule and go to the new process of an upgrade.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/packet/secretfile"
)

// tlsStopGrace is how long a graceful stop (or an upgrade's hand-over)
// lets a TLS handshake under way finish: the connection was accepted, and
// its client is about to send a request.
const tlsStopGrace = time.Second

// DefaultTLSHandshakeTimeout bounds a TLS handshake: a client that has not
// finished it by then is cut (counted as timeout).
const DefaultTLSHandshakeTimeout = 10 * time.Second

// TLS12Suites are the TLS 1.2 cipher suites offered: ECDHE key exchange
// with an AEAD only. TLS 1.3's suites are Go's (not configurable).
var TLS12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ServerTLS returns the tls.Config a TLS group serves with: TLS 1.2 and 1.3
// only, TLS12Suites for 1.2, the certificate from certs, and alpn (e.g.
// "dot" for DNS over TLS) as the protocols offered; a client that offers
// others and none of these is refused. One Config for all the groups of a
// process shares its session ticket keys among them.
func ServerTLS(certs *CertStore, alpn ...string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   TLS12Suites,
		GetCertificate: certs.GetCertificate,
		NextProtos:     alpn,
	}
}

// certPair is one loaded certificate and what it was loaded from.
type certPair struct {
	cert      *tls.Certificate
	notAfter  time.Time
	serial    string
	certStamp fileStamp // the files when loaded
	keyStamp  fileStamp
}

// CertStore holds the certificate a TLS group serves, loaded from a PEM
// certificate file (the leaf first, then its chain) and a PEM key file
// (mode 0600 or 0640, owned by this user or root), and swaps it
// atomically on Reload.
type CertStore struct {
	certFile, keyFile string
	reloadable[certPair]
}

// LoadCerts loads the pair; its error names the files and the problem.
func LoadCerts(certFile, keyFile string) (*CertStore, error) {
	s := &CertStore{certFile: certFile, keyFile: keyFile}
	if err := s.init(s.load); err != nil {
		return nil, err
	}
	return s, nil
}

// maxKeyFile bounds what is read of the key file (a PEM key, or a key
// with its chain when one file is given as both).
const maxKeyFile = 1 << 20

// maxCertFile bounds a certificate chain file: a chain is a few KiB.
const maxCertFile = 1 << 20

// load reads both files and checks that they make a usable pair. The key
// is read through secretfile.Read, which checks the file it opened: one
// other users may read or write, or that neither this user nor root owns,
// is refused (as TSIG keys are), and so is anything but a regular file.
func (s *CertStore) load() (*certPair, error) {
	ci, err := os.Stat(s.certFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s: %w", s.certFile, err)
	}
	ki, err := os.Stat(s.keyFile) // the stamp, taken before the read: a change after it reloads again
	if err != nil {
		return nil, fmt.Errorf("TLS key %s: %w", s.keyFile, err)
	}
	keyPEM, err := secretfile.Read(s.keyFile, maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS key %w", err)
	}
	certPEM, err := secretfile.ReadPlain(s.certFile, maxCertFile) // a FIFO there must not block a start or reload
	if errors.Is(err, secretfile.ErrTooLarge) {
		err = fmt.Errorf("larger than %d MiB: give the certificate chain only", maxCertFile>>20)
	}
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s: %w", s.certFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	clear(keyPEM) // the parsed key is in cert; the PEM copy is not kept
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w (give a PEM certificate chain, leaf first, and its PEM private key)", s.certFile, s.keyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s: %w", s.certFile, err)
	}
	cert.Leaf = leaf
	return &certPair{cert: &cert, notAfter: leaf.NotAfter, serial: leaf.SerialNumber.String(),
		certStamp: stampOf(ci), keyStamp: stampOf(ki)}, nil
}

// GetCertificate is tls.Config.GetCertificate: the pair loaded last.
func (s *CertStore) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load().cert, nil
}

// NotAfter is when the certificate in use expires.
func (s *CertStore) NotAfter() time.Time { return s.cur.Load().notAfter }

// Serial is the serial number of the certificate in use, in decimal.
func (s *CertStore) Serial() string { return s.cur.Load().serial }

// changed tells whether either file differs from the pair in use.
func (s *CertStore) changed() bool {
	p := s.cur.Load()
	return p.certStamp.stale(s.certFile) || p.keyStamp.stale(s.keyFile)
}

// Watch polls the files every interval until stop closes, and reloads when
// either changed (mtime or size). report gets each outcome once: nil after
// a reload, the error when a changed pair does not load (once per distinct
// error; the old pair keeps serving).
func (s *CertStore) Watch(interval time.Duration, stop <-chan struct{}, report func(error)) {
	watchFiles(interval, stop, s.changed, s.Reload, report)
}

// handshake runs the TLS handshake of an accepted connection within the
// handshake timeout and counts its outcome; ok false: the connection is to
// close for reason (not served). The deadline is cleared after. A client
// certificate's subject goes to cb.peer (packet.Packet.Peer).
func (t *tcpShard) handshake(st *connState, cb *connBuf) (reason metrics.CloseReason, ok bool) {
	tc := tls.Server(st.c, t.cfg.TLS)
	deadline := time.Now().Add(t.cfg.TLSHandshakeTimeout)
	_ = st.c.SetDeadline(deadline)
	if t.stopping.Load() { // stop may have set its grace before the line above; stopAt is set first
		if grace := time.Unix(0, t.stopAt.Load()).Add(tlsStopGrace); grace.Before(deadline) {
			_ = st.c.SetDeadline(grace)
		}
	}
	err := tc.Handshake()
	_ = st.c.SetDeadline(time.Time{})
	st.handshaking.Store(false) // from here on a stop interrupts its reads
	result := metrics.TLSOK
	if err != nil {
		result = t.handshakeResult(err)
	}
	t.mu.Lock()
	t.counts.TLSHandshakes[result]++
	if err == nil {
		cs := tc.ConnectionState()
		if len(cs.PeerCertificates) > 0 {
			cb.peer = []byte(cs.PeerCertificates[0].Subject.String())
		}
		if cs.DidResume {
			t.counts.TLSResumed++
		}
		v := metrics.TLS12
		if cs.Version == tls.VersionTLS13 {
			v = metrics.TLS13
		}
		t.counts.TLSVersions[v]++
		t.counts.TLSCiphers[metrics.TLSCipherOf(cs.CipherSuite)]++
	}
	t.ctr.Publish(&t.counts)
	t.mu.Unlock()
	switch result {
	case metrics.TLSOK:
		st.rw = tc
		return 0, true
	case metrics.TLSTimeout:
		return metrics.CloseIdle, false
	case metrics.TLSShutdown:
		return metrics.CloseShutdown, false
	case metrics.TLSEOF:
		return metrics.CloseEOF, false
	}
	return metrics.CloseError, false
}

// closeWrite ends what the server sends on a connection (a graceful stop):
// a TLS session sends its close_notify first, within the write timeout.
func (t *tcpShard) closeWrite(st *connState) {
	if tc, ok := st.rw.(*tls.Conn); ok {
		_ = st.c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
		_ = tc.CloseWrite() // close_notify, then the TCP FIN
		return
	}
	_ = st.c.CloseWrite()
}

// handshakeResult classifies a failed handshake for the counter.
func (t *tcpShard) handshakeResult(err error) metrics.TLSResult {
	var ne net.Error
	var rhe tls.RecordHeaderError
	var op *net.OpError
	switch {
	case t.stopping.Load():
		return metrics.TLSShutdown
	case errors.As(err, &ne) && ne.Timeout():
		return metrics.TLSTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return metrics.TLSEOF
	case errors.As(err, &op) && op.Op == "remote error":
		// The client refused us: an alert about our certificate, or one
		// about the protocol (version, suites, ALPN).
		if strings.Contains(op.Err.Error(), "certificate") || strings.Contains(op.Err.Error(), "unknown ca") {
			return metrics.TLSBadCertificate
		}
		return metrics.TLSProtocol
	case errors.As(err, &rhe):
		return metrics.TLSProtocol // not TLS at all
	case errors.As(err, new(*tls.CertificateVerificationError)):
		return metrics.TLSBadCertificate // a client certificate that does not verify
	case errors.As(err, &op):
		return metrics.TLSError // reset, closed (evicted)
	case strings.HasPrefix(err.Error(), "tls: "):
		// A local alert: no shared version, suite or ALPN protocol, or a
		// malformed message (crypto/tls gives them no type of their own).
		if strings.Contains(err.Error(), "certificate") {
			return metrics.TLSBadCertificate
		}
		return metrics.TLSProtocol
	}
	return metrics.TLSError
}

// streamGrace is graceUntil for a goroutine-shape connection; one whose
// TLS handshake ended after the stop began counts the grace from the
// handshake's end instead (its client sends its request right after).
func (t *tcpShard) streamGrace(st *connState, s *streamState) time.Time {
	g := t.graceUntil(st.fresh, s.lastRead, s.deadline)
	if g.IsZero() {
		g = aLongTimeAgo // no grace; as a read deadline, the zero time would mean none
	}
	if !st.fresh || st.rw == net.Conn(st.c) {
		return g
	}
	// As graceUntil, with the handshake's end in place of the stop's start.
	if end := graceFrom(s.start, s.lastRead, s.deadline); end.After(g) {
		return end
	}
	return g
}

// tlsPeek tells a stopping TLS connection that has read all the kernel
// had (the fence) to read once more before it closes: crypto/tls may have
// read the client's first request with the handshake's last record, out of
// the kernel's sight, and a read returns what it holds even past the
// deadline. Once per connection.
func tlsPeek(st *connState, s *streamState) bool {
	if st.rw == net.Conn(st.c) || s.peeked {
		return false
	}
	s.peeked = true
	return true
}
