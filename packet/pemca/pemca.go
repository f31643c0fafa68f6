// Package pemca loads a bundle of PEM CA certificates strictly: every PEM
// block must be a CERTIFICATE that parses, and a file without one is an
// error. x509.CertPool.AppendCertsFromPEM skips what it cannot read, so a
// typo in a CA file silently trusts fewer CAs (or none), and the mistake
// only shows when a handshake fails; here it shows at load, naming the
// file and the block.
//
// Text outside the blocks (the comments some bundles carry) is ignored.
package pemca

import (
	"github.com/shardd/shardd/packet/secretfile"

	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// MaxFile bounds what Load reads: a CA bundle is a few hundred KiB (the
// system's whole trust store is about 200 KiB).
const MaxFile = 8 << 20

// begin starts every PEM block; each one found must decode.
var begin = []byte("-----BEGIN")

// Parse returns the certificates of a PEM bundle, in order. A block that
// is not a CERTIFICATE, or does not decode or parse, is an error naming
// its number (from 1, counting every block); so is data without a block.
func Parse(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		i := bytes.Index(data, begin)
		if i < 0 {
			break
		}
		data = data[i:]
		// The block runs to the next BEGIN: pem.Decode would skip a broken
		// block and return the next one, which would hide the broken one.
		end := len(data)
		if j := bytes.Index(data[len(begin):], begin); j >= 0 {
			end = len(begin) + j
		}
		blk, _ := pem.Decode(data[:end])
		data = data[end:]
		switch {
		case blk == nil:
			return nil, fmt.Errorf("PEM block %d is broken: its BEGIN line, base64 body or END line does not read (fix or remove that block)", n)
		case blk.Type != "CERTIFICATE":
			return nil, fmt.Errorf("PEM block %d is a %q, not a CERTIFICATE (remove it: this file holds CA certificates only)", n, blk.Type)
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %v (fix or remove that block)", n, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate in it (give the CA certificate(s) to trust, in PEM)")
	}
	return certs, nil
}

// Load reads file (at most MaxFile bytes) and returns a pool of its
// certificates (see Parse) and their number. Its errors are one line that
// starts with the file's name.
func Load(file string) (*x509.CertPool, int, error) {
	data, err := readFile(file)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", file, err)
	}
	certs, err := Parse(data)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", file, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, len(certs), nil
}

// readFile reads file, at most MaxFile bytes, without blocking on a FIFO
// planted there; its error does not repeat the name.
func readFile(file string) ([]byte, error) {
	data, err := secretfile.ReadPlain(file, MaxFile)
	if errors.Is(err, secretfile.ErrTooLarge) {
		return nil, fmt.Errorf("larger than %d MiB; a CA bundle is a few hundred KiB (give the CA certificates only)", MaxFile>>20)
	}
	return data, err
}
