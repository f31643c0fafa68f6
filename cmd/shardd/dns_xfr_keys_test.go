//go:build linux

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// writeTSIGKeyFile writes a key file in the form tsig-keygen writes (BIND's
// key statement) holding key name with secret, mode 0600, and returns its
// path.
func writeTSIGKeyFile(t *testing.T, name, secret string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "tsig.keys")
	text := "key \"" + name + "\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + secret + "\";\n};\n"
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestXFRWithTSIGKeyFile: --tsig-keys gives the primary side its keys from
// the command line: with --allow-transfer key:xfr.key, dig -y with the
// file's secret gets the zone (AXFR); dig and kdig with a wrong secret for
// the same name, or unsigned, get nothing (BADSIG, REFUSED), each counted.
func TestXFRWithTSIGKeyFile(t *testing.T) {
	secret := randomSecret(t)
	keys := writeTSIGKeyFile(t, "xfr.key", secret)
	_, _, addr, url := xfrPrimary(t, "key:xfr.key", 0, "--tsig-keys", keys)
	port := strconv.Itoa(int(addr.Port()))
	axfr := func(args ...string) string {
		out, _ := exec.Command(requireTool(t, "dig"), append([]string{"@127.0.0.1", "-p", port, "+time=10", "+tries=1"}, args...)...).CombinedOutput()
		return string(out)
	}
	if out := axfr("-y", "hmac-sha256:xfr.key:"+secret, "xfr.test", "AXFR"); !strings.Contains(out, "XFR size: 10 records") || !strings.Contains(out, "192.0.2.10") {
		t.Errorf("AXFR signed with the file's key:\n%s", out)
	}
	wrong := randomSecret(t)
	if out := axfr("-y", "hmac-sha256:xfr.key:"+wrong, "xfr.test", "AXFR"); strings.Contains(out, "192.0.2.10") {
		t.Errorf("AXFR with a wrong secret got the zone:\n%s", out)
	}
	if out := axfr("xfr.test", "AXFR"); !strings.Contains(out, "Transfer failed") || strings.Contains(out, "192.0.2.10") {
		t.Errorf("unsigned AXFR (the ACL wants the key):\n%s", out)
	}
	out, _ := exec.Command(requireTool(t, "kdig"), "@127.0.0.1", "-p", port, "+time=10", "+retry=0",
		"-y", "hmac-sha256:xfr.key:"+wrong, "xfr.test", "AXFR").CombinedOutput()
	if !strings.Contains(string(out), "BADSIG") || strings.Contains(string(out), "192.0.2.10") {
		t.Errorf("kdig AXFR with a wrong secret: want BADSIG and no zone\n%s", out)
	}
	waitMetric(t, url, "shardd_dns_transfers_total", `result="sent",type="axfr",zone="xfr.test."`, 1)
	waitMetric(t, url, "shardd_dns_transfers_total", `result="badkey",type="axfr",zone="xfr.test."`, 2)
	waitMetric(t, url, "shardd_dns_transfers_total", `result="refused",type="axfr",zone="xfr.test."`, 1)
}

// TestPrimaryKeyFlags: a key named by --allow-transfer or --notify needs
// --tsig-keys (usage error, exit 2), and must be in that file.
func TestPrimaryKeyFlags(t *testing.T) {
	zone := filepath.Join(t.TempDir(), "xfr.test.zone")
	if err := os.WriteFile(zone, []byte(xfrZoneText(1, "192.0.2.10")), 0o644); err != nil {
		t.Fatal(err)
	}
	keys := writeTSIGKeyFile(t, "other.key", randomSecret(t))
	base := []string{"--handler", "dns", "--proto", "udp", "--zone", zone, "--xfr-listen", "127.0.0.1:0"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--allow-transfer", "key:xfr.key"}, "--allow-transfer key:xfr.key names a TSIG key: give the key file with --tsig-keys FILE"},
		{[]string{"--notify", "127.0.0.1:5399,key:xfr.key"}, "--notify 127.0.0.1:5399,key:xfr.key names a TSIG key: give the key file with --tsig-keys FILE"},
		{[]string{"--allow-transfer", "key:xfr.key", "--tsig-keys", keys}, "no TSIG key named xfr.key"},
	} {
		cmd := exec.Command(sharddBin(t), append(append(append([]string{}, base...), c.args...), "127.0.0.1:0")...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: exit %v, output:\n%s\nwant exit 2 and %q", c.args, err, out, c.want)
		}
	}
}
