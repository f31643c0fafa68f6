//go:build linux

package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestKafkaPasswordFileMode: a --kafka-sasl-password-file every user may
// read stops the start (exit 1, as a TSIG key file with that mode does)
// with one line naming the flag, the file and the fix; nothing reaches
// the brokers (there are none at that address).
func TestKafkaPasswordFileMode(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr := runOnce(t, nil, "--handler", "syslog", "--sink", "kafka://127.0.0.1:1/t",
		"--kafka-sasl", "plain", "--kafka-sasl-user", "u", "--kafka-sasl-password-file", pw, "127.0.0.1:0")
	if code != exitRuntime {
		t.Errorf("exit %d, want %d: %s", code, exitRuntime, stderr)
	}
	assertOneLine(t, stderr, "--kafka-sasl-password-file "+pw+": mode 0644 lets every user read or write its secrets (fix: chmod 0600 or 0640)")
}
