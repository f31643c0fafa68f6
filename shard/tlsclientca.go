package shard

// Mutual TLS: the CA certificates a client certificate must chain to,
// reloaded like the server's pair (HUP, a change of the file).

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardd/shardd/packet/pemca"
)

// fileStamp is what tells that a file changed: its mtime and size.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(fi os.FileInfo) fileStamp { return fileStamp{fi.ModTime(), fi.Size()} }

// stale tells whether path's stamp differs from s (a file that cannot be
// read counts as changed: the reload says why).
func (s fileStamp) stale(path string) bool {
	fi, err := os.Stat(path)
	return err != nil || !stampOf(fi).equal(s)
}

func (s fileStamp) equal(o fileStamp) bool { return s.mod.Equal(o.mod) && s.size == o.size }

// caPool is one loaded CA file.
type caPool struct {
	pool  *x509.CertPool
	n     int // certificates in it
	stamp fileStamp
}

// CAStore holds the CA certificates client certificates are verified
// against (--tls-client-ca), loaded from a PEM file and swapped atomically
// on Reload: handshakes from then on verify against the new pool.
type CAStore struct {
	file string
	reloadable[caPool]
}

// LoadClientCAs loads file; its error names the file and the problem.
func LoadClientCAs(file string) (*CAStore, error) {
	s := &CAStore{file: file}
	if err := s.init(s.load); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *CAStore) load() (*caPool, error) {
	fi, err := os.Stat(s.file)
	if err != nil {
		return nil, fmt.Errorf("TLS client CA %s: %w", s.file, err)
	}
	// Strict: a block that does not parse is refused, not skipped: skipped,
	// a cut or edited file would drop that CA and refuse its clients.
	pool, n, err := pemca.Load(s.file)
	if err != nil {
		return nil, fmt.Errorf("TLS client CA %w", err)
	}
	return &caPool{pool: pool, n: n, stamp: stampOf(fi)}, nil
}

// Certificates is the number of CA certificates in use.
func (s *CAStore) Certificates() int { return s.cur.Load().n }

func (s *CAStore) changed() bool { return s.cur.Load().stamp.stale(s.file) }

// Watch polls the file every interval until stop closes, and reloads it
// when it changed; report gets each outcome as CertStore.Watch's does.
func (s *CAStore) Watch(interval time.Duration, stop <-chan struct{}, report func(error)) {
	watchFiles(interval, stop, s.changed, s.Reload, report)
}

// Require makes conf ask every client for a certificate and refuse a
// handshake, full or resumed, whose certificate does not chain to a CA of
// s (for client authentication) at the time of the handshake. conf keeps
// no pool of its own, so a Reload applies at once.
func (s *CAStore) Require(conf *tls.Config) {
	conf.ClientAuth = tls.RequireAnyClientCert
	conf.VerifyConnection = s.verify
}

// verify is tls.Config.VerifyConnection: the client's chain against the
// pool in use. crypto/tls calls it on resumed handshakes too, so a session
// whose CA was dropped by a reload does not resume.
func (s *CAStore) verify(cs tls.ConnectionState) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return &tls.CertificateVerificationError{Err: errors.New("the client sent no certificate")}
	}
	opts := x509.VerifyOptions{Roots: s.cur.Load().pool, Intermediates: x509.NewCertPool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	return nil
}

// reloadable is what a store loaded from files serves, swapped
// atomically by Reload: handshakes read it without a lock.
type reloadable[T any] struct {
	cur  atomic.Pointer[T]
	mu   sync.Mutex // serializes Reload
	load func() (*T, error)
}

// init loads the first value with load, which Reload calls again.
func (r *reloadable[T]) init(load func() (*T, error)) error {
	r.load = load
	return r.Reload()
}

// Reload loads the files again and, if they load, serves what they hold
// from the next handshake on; otherwise what is in use stays and the error
// says why (the CA file: at least one certificate; the pair: a certificate
// and its key).
func (r *reloadable[T]) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, err := r.load()
	if err != nil {
		return err
	}
	r.cur.Store(v)
	return nil
}

// watchFiles polls changed every interval until stop closes, and calls
// reload when it reports a change. report gets each outcome once: nil
// after a reload, the error when the changed files do not load (once per
// distinct error; what was loaded before keeps serving).
func watchFiles(interval time.Duration, stop <-chan struct{}, changed func() bool, reload func() error, report func(error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	failedFor := "" // the error last reported, so each is reported once
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if !changed() {
			failedFor = ""
			continue
		}
		err := reload()
		switch {
		case err == nil:
			failedFor = ""
			report(nil)
		case err.Error() != failedFor:
			failedFor = err.Error()
			report(err)
		}
	}
}
