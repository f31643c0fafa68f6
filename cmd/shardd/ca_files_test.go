//go:build linux

package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBadCAFileOneLine: a CA file with a broken block, for
// --tls-client-ca and for --kafka-tls-ca, stops the start with one line
// naming the flag (or what it is), the file and the block, and nothing
// else on stderr (no "TLS certificate loaded" line before it).
func TestBadCAFileOneLine(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	certFile, keyFile, bad := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "bad.pem")
	ca.issue(t, 1, certFile, keyFile)
	good, err := os.ReadFile(ca.caFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, append(good, "-----BEGIN CERTIFICATE-----\nMIIB\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--handler", "echo", "--proto", "tcp", "--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", bad, "--tls", "127.0.0.1:0"},
			"TLS client CA " + bad + ": PEM block 2 is broken"},
		{[]string{"--handler", "syslog", "--sink", "kafka://127.0.0.1:1/t", "--kafka-tls-ca", bad, "127.0.0.1:0"},
			"--kafka-tls-ca " + bad + ": PEM block 2 is broken"},
	} {
		code, stderr := runOnce(t, nil, c.args...)
		if code != exitRuntime {
			t.Errorf("%v: exit %d, want %d: %s", c.args, code, exitRuntime, stderr)
		}
		assertOneLine(t, stderr, c.want)
	}
}
