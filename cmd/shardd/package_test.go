//go:build linux

package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shardd/shardd/cmd/internal/tooltest"
)

// maxSecurityExposure is the most `systemd-analyze security --offline=true`
// may score shardd.service (0 is best, 10 worst; it scored 1.7 when the
// hardening was completed, 3.9 before).
const maxSecurityExposure = 2.0

// debFiles are the files (not directories) the package must hold.
var debFiles = []string{
	"/etc/default/shardd",
	"/etc/shardd/zones/2.0.192.in-addr.arpa.zone",
	"/etc/shardd/zones/example.com.zone",
	"/lib/systemd/system/shardd.service",
	"/lib/systemd/system/shardd.socket",
	"/usr/sbin/shardd",
	"/usr/share/bash-completion/completions/shardd",
	"/usr/share/doc/shardd/copyright",
	"/usr/share/man/man8/shardd.8.gz",
	"/usr/share/zsh/vendor-completions/_shardd",
}

// TestPackageDeb builds the package with make deb, installs it with dpkg
// into a scratch root (never this machine's /usr; the service is not
// started), and checks its files, its conffiles, that its man page and
// completions are what its binary generates, that systemd-analyze verify
// accepts its units without a word, that its hardening scores at most
// maxSecurityExposure, and that the sample configuration serves DNS.
func TestPackageDeb(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("SHARDD_REQUIRE_TOOLS") != "1" {
		t.Skip("installing a package into a scratch root needs root (dpkg sets owners)")
	}
	makeBin := tooltest.Require(t, "make")
	dpkg := tooltest.Require(t, "dpkg")
	tooltest.Require(t, "dpkg-deb")
	analyze := tooltest.Require(t, "systemd-analyze")
	out := t.TempDir()
	build := exec.Command(makeBin, "-C", "../..", "deb", "BIN="+out)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "shardd_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %v, want one shardd_*.deb", debs)
	}
	root := scratchRoot(t)
	install := exec.Command(dpkg, "--root="+root, "--log=/dev/null", "-i", debs[0])
	if b, err := install.CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, b)
	}
	t.Run("files", func(t *testing.T) { checkDebFiles(t, dpkg, root) })
	t.Run("generated", func(t *testing.T) { checkDebGenerated(t, root) })
	t.Run("verify", func(t *testing.T) { checkDebUnitsVerify(t, analyze, root) })
	t.Run("security", func(t *testing.T) { checkDebSecurity(t, analyze, root) })
	t.Run("serves", func(t *testing.T) { checkDebServesDNS(t, root) })
}

// scratchRoot is an empty dpkg database in a temporary directory, with
// the pieces of a Debian system the units refer to: systemd's targets and
// slices and /bin/kill, copied from this machine.
func scratchRoot(t *testing.T) string {
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "usr/lib/systemd/system", "bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	units, _ := filepath.Glob("/usr/lib/systemd/system/*.target")
	slicesFound, _ := filepath.Glob("/usr/lib/systemd/system/*.slice")
	if len(units) == 0 {
		t.Skip("no systemd units on this machine to verify against")
	}
	for _, src := range append(append(units, slicesFound...), "/bin/kill") {
		dst := filepath.Join(root, strings.TrimPrefix(src, "/"))
		if strings.HasPrefix(src, "/usr/lib/systemd/system/") {
			dst = filepath.Join(root, "usr/lib/systemd/system", filepath.Base(src))
		}
		copyFile(t, src, dst)
	}
	return root
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

// checkDebFiles: dpkg lists exactly debFiles as the package's files, owned
// by root, the binary executable, and everything under /etc a conffile.
func checkDebFiles(t *testing.T, dpkg, root string) {
	list, err := exec.Command(dpkg, "--root="+root, "-L", "shardd").Output()
	if err != nil {
		t.Fatalf("dpkg -L: %v", err)
	}
	var files []string
	for _, p := range strings.Fields(string(list)) {
		if fi, err := os.Stat(filepath.Join(root, p)); err == nil && fi.Mode().IsRegular() {
			files = append(files, p)
		}
	}
	slices.Sort(files)
	if !slices.Equal(files, debFiles) {
		t.Errorf("package files:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(debFiles, "\n"))
	}
	if fi, err := os.Stat(filepath.Join(root, "usr/sbin/shardd")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("/usr/sbin/shardd: %v, want mode 0755", fi.Mode())
	}
	conf, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f=${Conffiles}", "shardd").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	for _, f := range debFiles {
		if strings.HasPrefix(f, "/etc/") && !strings.Contains(string(conf), " "+f+" ") {
			t.Errorf("%s is not a conffile (conffiles: %q)", f, conf)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/shardd.service"))
	for _, want := range []string{"DynamicUser=yes", "ExecStart=/usr/sbin/shardd ", "EnvironmentFile=-/etc/default/shardd"} {
		if !strings.Contains(string(unit), "\n"+want) {
			t.Errorf("shardd.service lacks %q", want)
		}
	}
}

// checkDebGenerated: the installed man page and completions are what the
// installed binary prints.
func checkDebGenerated(t *testing.T, root string) {
	bin := filepath.Join(root, "usr/sbin/shardd")
	gz, err := os.Open(filepath.Join(root, "usr/share/man/man8/shardd.8.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	for file, args := range map[string][]string{
		"": {"man"},
		"usr/share/bash-completion/completions/shardd": {"completion", "bash"},
		"usr/share/zsh/vendor-completions/_shardd":     {"completion", "zsh"},
	} {
		want, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("shardd %v: %v", args, err)
		}
		got := page
		if file != "" {
			if got, err = os.ReadFile(filepath.Join(root, file)); err != nil {
				t.Fatal(err)
			}
		}
		if len(want) == 0 || !bytes.Equal(got, want) {
			t.Errorf("installed %v output differs from shardd %v (%d bytes, want %d)", file, args, len(got), len(want))
		}
	}
}

// checkDebUnitsVerify: systemd-analyze verify, on the units as installed in
// the scratch root, says nothing and succeeds: their directives, the
// ExecStart binary, and Documentation=man:shardd(8) (found through MANPATH
// in the scratch root).
func checkDebUnitsVerify(t *testing.T, analyze, root string) {
	cmd := exec.Command(analyze, "verify", "--root="+root, "shardd.service", "shardd.socket")
	cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(root, "usr/share/man"))
	b, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(b)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, b)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for shardd\.service: ([0-9.]+) (\S+)`)

// checkDebSecurity: systemd-analyze security scores the installed unit at
// most maxSecurityExposure.
func checkDebSecurity(t *testing.T, analyze, root string) {
	b, err := exec.Command(analyze, "security", "--offline=true", filepath.Join(root, "lib/systemd/system/shardd.service")).CombinedOutput()
	m := exposureRE.FindSubmatch(b)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v, no overall exposure level in:\n%s", err, b)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security --offline=true shardd.service: %s %s", m[1], m[2])
	if score > maxSecurityExposure {
		t.Errorf("exposure %.1f above %.1f: the hardening regressed\n%s", score, maxSecurityExposure, b)
	}
}

var shardArgsRE = regexp.MustCompile(`(?m)^SHARDD_ARGS="([^"]*)"`)

// checkDebServesDNS: the service's default SHARDD_ARGS (the unit's and
// /etc/default/shardd's, the same) serve the shipped zones. The installed
// binary runs them with the paths moved into the scratch root, on a
// loopback port instead of 53, and answers a query from example.com.
func checkDebServesDNS(t *testing.T, root string) {
	def, err := os.ReadFile(filepath.Join(root, "etc/default/shardd"))
	if err != nil {
		t.Fatal(err)
	}
	m := shardArgsRE.FindSubmatch(def)
	if m == nil {
		t.Fatalf("/etc/default/shardd sets no SHARDD_ARGS:\n%s", def)
	}
	unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/shardd.service"))
	if !strings.Contains(string(unit), `Environment="SHARDD_ARGS=`+string(m[1])+`"`) {
		t.Errorf("the unit's default SHARDD_ARGS differ from /etc/default/shardd's %q", m[1])
	}
	args := strings.Fields(string(m[1]))
	zones := 0
	for i, a := range args {
		switch {
		case a == "/etc/shardd/zones":
			args[i] = filepath.Join(root, a)
			zones++
		case a == ":53":
			args[i] = "127.0.0.1:0"
		case i > 0 && args[i-1] == "--metrics":
			args[i] = "127.0.0.1:0"
		}
	}
	if zones != 1 {
		t.Fatalf("SHARDD_ARGS names /etc/shardd/zones %d times, want once (the directory of the shipped zones): %q", zones, m[1])
	}
	d := startDaemonBin(t, filepath.Join(root, "usr/sbin/shardd"), nil, append(args, "--shards", "1")...)
	l := d.WaitLine(t, "listening")
	if l["handler"] != "dns" {
		t.Errorf("the sample serves handler %v, want dns", l["handler"])
	}
	bound, err := netip.ParseAddrPort(l["bound"].(string))
	if err != nil {
		t.Fatal(err)
	}
	r := dig(t, "dig", bound, "www.example.com", "A")
	if r.status != "NOERROR" || !strings.Contains(strings.Join(r.answer, "\n"), "192.0.2.80") {
		t.Errorf("www.example.com A from the packaged zones: status %s, answer %q", r.status, r.answer)
	}
	// Both shipped zones come from the directory.
	r = dig(t, "dig", bound, "1.2.0.192.in-addr.arpa", "PTR")
	if r.status != "NOERROR" || !strings.Contains(strings.Join(r.answer, "\n"), "example.com.") {
		t.Errorf("1.2.0.192.in-addr.arpa PTR from the packaged zones: status %s, answer %q", r.status, r.answer)
	}
}
