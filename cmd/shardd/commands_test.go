//go:build linux

package main

import (
	"bytes"
	"flag"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestUnknownCommand: a first word that is no command is said to be one
// (exit 2), with the list; a first argument that looks like an ADDR is
// still parsed as one, whatever its fault.
func TestUnknownCommand(t *testing.T) {
	for _, word := range []string{"foo", "serve", "Check", "localhost"} {
		var stdout, stderr bytes.Buffer
		code := runBounded(t, []string{word, ":5353"}, &stdout, &stderr)
		want := `shardd: unknown command "` + word + `"; the commands are check, inspect, upgrade, version, help`
		if code != exitUsage || !strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("shardd %s: exit %d, stderr %q; want 2 and %q", word, code, stderr.String(), want)
		}
	}
	for addr, want := range map[string]string{
		":5353x":          `address ":5353x": port "5353x" is not a number`,
		"127.0.0.1:99999": `address "127.0.0.1:99999": port 99999 is out of range`,
		"[::]:http":       `address "[::]:http": port "http" is not a number`,
		"localhost:53":    `host "localhost" is not an IP address`,
		"5353":            `address "5353": not a HOST:PORT address`,
	} {
		var stdout, stderr bytes.Buffer
		code := runBounded(t, []string{addr}, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), want) || strings.Contains(stderr.String(), "unknown command") {
			t.Errorf("shardd %s: exit %d, stderr %q; want 2 and %q", addr, code, stderr.String(), want)
		}
	}
}

// TestHelpOnEveryCommand: --help and -h on every subcommand print its
// usage to stdout and exit 0; so does shardd help COMMAND, and shardd help
// prints what shardd --help does.
func TestHelpOnEveryCommand(t *testing.T) {
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr, nil)
			if code != exitOK || !strings.HasPrefix(stdout.String(), "Usage: shardd "+c.name) || stderr.Len() != 0 {
				t.Errorf("shardd %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, stdout.String(), stderr.String())
			}
		}
	}
	var help, flagHelp, stderr bytes.Buffer
	if code := run([]string{"help"}, &help, &stderr, nil); code != exitOK {
		t.Fatalf("shardd help: exit %d: %s", code, stderr.String())
	}
	run([]string{"--help"}, &flagHelp, &stderr, nil)
	if help.String() != flagHelp.String() || !strings.Contains(help.String(), "Commands:") {
		t.Errorf("shardd help differs from shardd --help or lists no commands:\n%s", help.String())
	}
	for _, c := range commands() {
		if !strings.Contains(help.String(), "\n  "+c.name+" ") {
			t.Errorf("shardd --help does not list the command %s", c.name)
		}
	}
	if code := run([]string{"help", "nope"}, &help, &stderr, nil); code != exitUsage || !strings.Contains(stderr.String(), `unknown command "nope"`) {
		t.Errorf("shardd help nope: exit %d, %q", code, stderr.String())
	}
}

// TestHelpListsEveryFlagAligned: every flag of the daemon is in --help,
// each description starts in one column (below a flag whose value form is
// too long for it), and every flag whose value is not
// a switch shows its default.
func TestHelpListsEveryFlagAligned(t *testing.T) {
	var stdout bytes.Buffer
	run([]string{"--help"}, &stdout, &bytes.Buffer{}, nil)
	text := stdout.String()
	fs, _ := newFlagSet(&options{})
	col := -1
	_, flagLines, _ := strings.Cut(text, "\nFlags")
	flagLines, _, _ = strings.Cut(flagLines, "\n\n")
	for _, l := range strings.Split(flagLines, "\n")[1:] {
		at := len(l) - len(strings.TrimLeft(l, " ")) // a continuation's column
		if strings.HasPrefix(l, "  --") {
			name, _, _ := strings.Cut(l[4:], " ")
			if fs.Lookup(name) == nil {
				t.Errorf("--help lists --%s, which is no flag", name)
			}
			gap := strings.Index(l[2:], "  ") + 2 // after "--name VALUE"
			if gap == 1 {
				continue // a long value form alone on its line: the description follows below
			}
			at = gap + len(l[gap:]) - len(strings.TrimLeft(l[gap:], " "))
		}
		if col == -1 {
			col = at
		} else if at != col {
			t.Errorf("description at column %d, others at %d: %q", at, col, l)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(text, "  --"+f.Name+" ") {
			t.Errorf("--help does not list --%s", f.Name)
		}
		if f.DefValue != "" && f.DefValue != "false" && !strings.Contains(strings.Join(strings.Fields(text), " "), "(default "+f.DefValue+")") {
			t.Errorf("--help does not show --%s's default %q", f.Name, f.DefValue)
		}
	})
}

// TestVersionFields: shardd version and --version print the same line:
// version, commit, Go version and platform. A binary built without VCS
// stamping takes the commit and version the Makefile passes with -ldflags.
func TestVersionFields(t *testing.T) {
	var a, b, stderr bytes.Buffer
	if code := run([]string{"version"}, &a, &stderr, nil); code != exitOK {
		t.Fatalf("shardd version: exit %d: %s", code, stderr.String())
	}
	if code := run([]string{"--version"}, &b, &stderr, nil); code != exitOK || a.String() != b.String() {
		t.Fatalf("shardd --version: exit %d, %q; shardd version said %q", code, b.String(), a.String())
	}
	want := " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if !strings.HasPrefix(a.String(), "shardd ") || !strings.Contains(a.String(), " commit ") || !strings.HasSuffix(a.String(), want) {
		t.Fatalf("shardd version: %q, want shardd VERSION commit COMMIT ...%q", a.String(), want)
	}

	out, err := exec.Command(stamped.Path(t), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got != "shardd v9.9.9-dirty commit 0123abc (modified)"+want {
		t.Errorf("a -buildvcs=false build with -ldflags: %q", got)
	}
}

// TestVersionFromVCS: a go build in a git checkout is stamped with the
// checkout's commit by the toolchain itself.
func TestVersionFromVCS(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	goflags, _ := exec.Command("go", "env", "GOFLAGS").Output()
	if err != nil || strings.Contains(string(goflags), "buildvcs=false") {
		t.Skipf("no git checkout with VCS stamping here (git: %v; GOFLAGS %s)", err, bytes.TrimSpace(goflags))
	}
	out, err := exec.Command(sharddBin(t), "--version").Output()
	if err != nil || !strings.Contains(string(out), " commit "+strings.TrimSpace(string(head))) {
		t.Errorf("go build in a checkout: %q (%v), want commit %s", out, err, head)
	}
}

// stamped is the daemon built as `go run` and -buildvcs=false builds are
// (no VCS information), with what the Makefile passes instead.
var stamped = testkit.NewBinary("shardd-stamped", ".", "-buildvcs=false", "-ldflags", "-X main.commit=0123abc -X main.gitVersion=v9.9.9-dirty")

// TestCheckExitCodes: shardd check exits 0 for a good command line (and
// binds nothing: the port is held by the test, without SO_REUSEPORT),
// 1 for a zone that does not load or a sink it cannot open, 2 for a bad
// flag; it does not create a sink file that does not exist.
func TestCheckExitCodes(t *testing.T) {
	held, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	busy := held.LocalAddr().String()
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.zone")
	if err := os.WriteFile(broken, []byte("$ORIGIN example.org.\n@ IN SOA ns1 ( 1 2 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sink := filepath.Join(dir, "syslog.ndjson")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--handler", "dns", "--proto", "udp,tcp", "--zone", "../../testdata/dns/example.com.zone", busy}, exitOK, "shardd check: ok: --handler dns on " + busy},
		{[]string{"--shards", "2", "--rcvbuf", "8m", busy}, exitOK, "shardd check: ok: --handler echo"},
		{[]string{"--handler", "syslog", "--sink", sink, busy}, exitOK, "shardd check: ok: --handler syslog"},
		{[]string{"--handler", "dns", "--zone", broken, busy}, exitRuntime, "shardd check: zone " + broken},
		{[]string{"--handler", "dns", "--zone", filepath.Join(dir, "missing.zone"), busy}, exitRuntime, "missing.zone"},
		{[]string{"--handler", "syslog", "--sink", filepath.Join(dir, "no", "such", "dir", "x"), busy}, exitRuntime, "its directory"},
		{[]string{"--pidfile", filepath.Join(dir, "nodir", "pid"), busy}, exitRuntime, "--pidfile"},
		{[]string{"--rcvbuf", "12X", busy}, exitUsage, `shardd check: --rcvbuf "12X": want a byte count`},
		{[]string{"--handler", "dns", busy}, exitUsage, "needs at least one --zone"},
		{[]string{"--bogus", busy}, exitUsage, "unknown flag --bogus"},
		{[]string{}, exitUsage, "no address to listen on"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"check", "--log-level", "warn"}, tc.args...), &stdout, &stderr, nil)
		got := stdout.String() + stderr.String()
		if code != tc.code || !strings.Contains(got, tc.want) {
			t.Errorf("shardd check %s: exit %d, output %q; want %d and %q", strings.Join(tc.args, " "), code, got, tc.code, tc.want)
		}
	}
	if _, err := os.Lstat(sink); !os.IsNotExist(err) {
		t.Errorf("shardd check created the sink %s (%v)", sink, err)
	}
}

// TestSizeAndDurationFlagErrors: sizes take every spelling of K, M and G;
// an error quotes the value given; a duration without a unit says so.
func TestSizeAndDurationFlagErrors(t *testing.T) {
	for in, want := range map[string]int{"64k": 64 << 10, "64K": 64 << 10, "64KiB": 64 << 10, "64kib": 64 << 10, "8m": 8 << 20, "8MiB": 8 << 20, "1g": 1 << 30, "1GiB": 1 << 30, "4096": 4096} {
		o, _, err := parseArgs([]string{"--rcvbuf", in, "--sndbuf", in, ":5353"}, &bytes.Buffer{})
		if err != nil || int(o.rcvbuf) != want || int(o.sndbuf) != want {
			t.Errorf("--rcvbuf/--sndbuf %s: %v, %v; want %d", in, o, err, want)
		}
	}
	for _, tc := range []struct{ args, want string }{
		{"--rcvbuf 12X", `shardd: --rcvbuf "12X": want a byte count such as 4194304, 4M or 512KiB (at most 2G)`},
		{"--max-conn-memory 1.5M", `shardd: --max-conn-memory "1.5M": want a byte count`},
		{"--guard-interval 5", `shardd: --guard-interval "5": missing unit, e.g. 5s`},
		{"--drain-timeout 2", `shardd: --drain-timeout "2": missing unit, e.g. 2s`},
		{"--idle-timeout 1x", `shardd: --idle-timeout "1x": want a duration such as 30s, 500ms or 2m`},
		{"--pin=yes", `shardd: --pin "yes": want true or false`},
	} {
		var stdout, stderr bytes.Buffer
		code := runBounded(t, append(strings.Fields(tc.args), ":5353"), &stdout, &stderr)
		if code != exitUsage || stderr.String() != tc.want+"\n" && !strings.HasPrefix(stderr.String(), tc.want) {
			t.Errorf("%s: exit %d, %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestUpgradeCommandWaitsForTheOutcome: shardd upgrade exits 1 with the
// reason when the new binary exits at start (the old process serves on),
// and 0 with the new pid once a working binary took over.
func TestUpgradeCommandWaitsForTheOutcome(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "shardd")
	install := func(b []byte) {
		_ = os.Remove(bin) // a new inode, as an install does
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	good, err := os.ReadFile(sharddBin(t))
	if err != nil {
		t.Fatal(err)
	}
	install(good)
	pidfile := filepath.Join(dir, "shardd.pid")
	d := startDaemonBin(t, bin, nil, "--shards", "1", "--pidfile", pidfile, "127.0.0.1:0")
	to := d.WaitLine(t, "listening")["bound"].(string)
	oldPid := d.WaitPidfile(t, pidfile)

	install([]byte("#!/bin/sh\nexit 3\n"))
	var stdout, stderr bytes.Buffer
	code := run([]string{"upgrade", "--pidfile", pidfile}, &stdout, &stderr, nil)
	if code != exitRuntime || !strings.Contains(stderr.String(), "shardd upgrade: the upgrade failed: new process") || !strings.Contains(stderr.String(), "process "+oldPid+" keeps serving") {
		t.Fatalf("failing upgrade: exit %d, stdout %q, stderr %q; want 1 and the reason\n%s", code, stdout.String(), stderr.String(), d.Stderr)
	}
	if got, _ := testkit.Exchange(t, "udp4", netip.MustParseAddrPort(to), []byte("old")); string(got) != "old" {
		t.Fatalf("after the failed upgrade the old process does not serve: %q", got)
	}

	install(good)
	stdout.Reset()
	stderr.Reset()
	code = run([]string{"upgrade", "--pidfile", pidfile}, &stdout, &stderr, nil)
	newPid, _ := strconv.Atoi(strings.Fields(strings.TrimPrefix(stdout.String(), "shardd upgrade: new process "))[0])
	if newPid > 0 {
		defer syscall.Kill(newPid, syscall.SIGKILL) // only if the test fails before the TERM below
	}
	if code != exitOK || newPid <= 0 || strconv.Itoa(newPid) == oldPid || !strings.Contains(stdout.String(), "took over from "+oldPid) {
		t.Fatalf("upgrade: exit %d, stdout %q, stderr %q; want 0 and the new pid\n%s", code, stdout.String(), stderr.String(), d.Stderr)
	}
	if b, _ := os.ReadFile(pidfile); strings.TrimSpace(string(b)) != strconv.Itoa(newPid) {
		t.Errorf("pidfile holds %q, the command said %d", b, newPid)
	}
	if got, _ := testkit.Exchange(t, "udp4", netip.MustParseAddrPort(to), []byte("new")); string(got) != "new" {
		t.Fatalf("after the upgrade: %q", got)
	}
	_ = syscall.Kill(newPid, syscall.SIGTERM)
	testkit.PollFor(t, "the new process to stop and remove its pidfile and the outcome", testkit.WaitTimeout, func() bool {
		_, e1 := os.Lstat(pidfile)
		_, e2 := os.Lstat(outcomePath(pidfile))
		return os.IsNotExist(e1) && os.IsNotExist(e2)
	})
}
