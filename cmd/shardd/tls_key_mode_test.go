//go:build linux

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSKeyFileMode: a --tls-key every user may read stops the start
// (exit 1, as a TSIG key file or a Kafka password file with that mode
// does) with one line naming the file and the fix; `shardd check` says
// the same, and takes the key at 0600 and 0640.
func TestTLSKeyFileMode(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	newTestCA(t, dir).issue(t, 1, certFile, keyFile)
	args := []string{"--handler", "dns", "--zone", "../../testdata/dns/example.com.zone", "--proto", "udp",
		"--tls-cert", certFile, "--tls-key", keyFile, "127.0.0.1:0", "--tls", "127.0.0.2:0"}
	want := "TLS key " + keyFile + ": mode 0644 lets every user read or write its secrets (fix: chmod 0600 or 0640)"
	check := func(mode os.FileMode) (int, string) {
		if err := os.Chmod(keyFile, mode); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"check", "--log-level", "warn"}, args...), &stdout, &stderr, nil)
		return code, stdout.String() + stderr.String()
	}
	for _, mode := range []os.FileMode{0o600, 0o640} {
		if code, out := check(mode); code != exitOK || !strings.HasPrefix(out, "shardd check: ok") {
			t.Errorf("shardd check, key mode %04o: exit %d, output %q; want it taken", mode, code, out)
		}
	}
	if code, out := check(0o644); code != exitRuntime || strings.Count(out, "\n") != 1 || !strings.Contains(out, "shardd check: "+want) {
		t.Errorf("shardd check, key mode 0644: exit %d, output %q; want %d and one line with %q", code, out, exitRuntime, want)
	}
	code, stderr := runOnce(t, nil, args...)
	if code != exitRuntime {
		t.Errorf("exit %d, want %d: %s", code, exitRuntime, stderr)
	}
	assertOneLine(t, stderr, want)
}

// TestTLSKeyFileModeReload: a new pair whose key every user may read is
// refused when the files change (logged; the old certificate keeps
// serving); once the key is 0640 the new pair loads.
func TestTLSKeyFileModeReload(t *testing.T) {
	x := startDoT(t)
	if err := os.Chmod(x.keyFile, 0o644); err != nil { // before the write: every load of the new files sees 0644
		t.Fatal(err)
	}
	x.ca.issue(t, 2, x.certFile, x.keyFile) // os.WriteFile keeps the mode of a file that exists
	l := x.d.WaitLine(t, "TLS certificate files changed but do not load; the previous certificate keeps serving")
	if e, _ := l["error"].(string); !strings.Contains(e, "TLS key "+x.keyFile+": mode 0644") || !strings.Contains(e, "chmod 0600 or 0640") {
		t.Errorf("the refusal logged: %v", l)
	}
	if s := x.serial(t); s != "1" {
		t.Fatalf("after a 0644 key: serial %s, want 1 still", s)
	}
	if err := os.Chmod(x.keyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	if l := x.d.WaitLine(t, "TLS certificate reloaded (files changed)"); l["serial"] != "2" {
		t.Fatalf("reload line %v", l)
	}
	if s := x.serial(t); s != "2" {
		t.Fatalf("after chmod 0640: serial %s, want 2", s)
	}
}
