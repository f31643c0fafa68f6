package kafka

import (
	"crypto/tls"
	"strings"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/shardd/shardd/packet/pemca"
	"github.com/shardd/shardd/packet/secretfile"
)

// SASLMechanisms are the names SASL takes.
var SASLMechanisms = []string{"scram-sha-256", "scram-sha-512", "plain"}

// SASL returns the mechanism named (one of SASLMechanisms) for user and
// password, or false.
func SASL(name, user, pass string) (sasl.Mechanism, bool) {
	switch name {
	case "scram-sha-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), true
	case "scram-sha-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), true
	case "plain":
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), true
	}
	return nil, false
}

// TLSConfig returns the TLS configuration to reach brokers: the system's
// roots, or only the PEM certificates in caFile if it is not empty. The
// file is read strictly (pemca.Load): a block that is not a certificate
// is an error naming the file and the block, not a CA silently left out.
func TLSConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pool, _, err := pemca.Load(caFile)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// MaxSecretFile bounds what ReadSecret reads.
const MaxSecretFile = 64 << 10

// ReadSecret reads a password file: its first line, without the newline.
// The file must be private (secretfile.Read: mode 0600 or 0640, owned by
// this user or root); its errors start with the file's name.
func ReadSecret(file string) (string, error) {
	b, err := secretfile.Read(file, MaxSecretFile)
	if err != nil {
		return "", err
	}
	s, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}
