//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"

	"golang.org/x/sys/unix"
)

// logLines returns the JSON log lines the daemon wrote so far whose msg
// starts with prefix.
func logLines(d *daemon, prefix string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(d.Stderr.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			if msg, _ := m["msg"].(string); strings.HasPrefix(msg, prefix) {
				out = append(out, m)
			}
		}
	}
	return out
}

// waitLines waits (up to 30 s) until the daemon has logged at least n lines
// whose msg starts with prefix, and returns them.
func waitLines(t *testing.T, d *daemon, prefix string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ls := logLines(d, prefix)
		if len(ls) >= n {
			return ls
		}
		select {
		case <-d.Exited:
			t.Fatalf("shardd exited (code %d) before logging %q %d times:\n%s", d.Code, prefix, n, d.Stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("shardd logged %q %d times, want %d:\n%s", prefix, len(ls), n, d.Stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkFDLine checks that a logged error names descriptor exhaustion and
// the fix.
func checkFDLine(t *testing.T, what string, l map[string]any) {
	t.Helper()
	e, _ := l["error"].(string)
	cause, _ := l["cause"].(string)
	fix, _ := l["fix"].(string)
	if !strings.Contains(e+cause, "too many open files") || !strings.Contains(cause, "EMFILE") || !strings.Contains(fix, "LimitNOFILE") || !strings.Contains(fix, "--max-conns") {
		t.Errorf("%s: %v; want the error, the cause (EMFILE) and the fix (LimitNOFILE, ulimit -n, --max-conns)", what, l)
	}
}

// TestAttackDescriptorExhaustionReported: with the daemon at its descriptor
// limit, a zone reload (HUP), an upgrade (USR2), the guard and the metrics
// endpoint each report the cause once, naming EMFILE and the fix, however
// often they retry; when descriptors are available again each recovers,
// and the guard and the endpoint say so once.
func TestAttackDescriptorExhaustionReported(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	d := startDaemon(t, "--handler", "dns", "--zone", "../../testdata/dns/example.com.zone", "--proto", "udp,tcp", "--shards", "2",
		"--metrics", "127.0.0.1:0", "--guard-interval", "50ms", "--log-level", "debug", "--pidfile", pidfile, "127.0.0.1:0")
	d.WaitLine(t, "listening")
	url := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	pid := d.Cmd.Process.Pid
	testkit.ScrapeRetry(t, url)

	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Skipf("prlimit: %v", err)
	}
	// The limit bounds descriptor numbers: with every number below it in
	// use, no new descriptor can be had. It is set to 3, below everything
	// but stdin, stdout and stderr, which the daemon holds for its life:
	// a limit at the lowest free number would count descriptors that are
	// about to close (the server's end of the scrape above is closed only
	// after the client has its reply), and each one that closed would give
	// the guard a free number (it then never failed). Only the soft limit
	// is lowered: raising a hard limit back needs CAP_SYS_RESOURCE, which
	// a container may lack, and shardd never raises its own.
	const n = 3
	held := testkit.OpenFDs(t, pid)
	if !held[0] || !held[1] || !held[2] {
		t.Fatalf("shardd does not hold descriptors 0, 1 and 2: %v", held)
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: old.Max}, nil); err != nil {
		t.Skipf("cannot lower the daemon's descriptor limit: %v", err)
	}
	raised := false
	raise := func() {
		if !raised {
			raised = true
			if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer raise()

	// The guard: one warning, then passes that fail again (debug lines,
	// so the test can wait for them) without another warning.
	const guardMsg = "cannot look for foreign sockets"
	checkFDLine(t, "guard", waitLines(t, d, guardMsg, 1)[0])
	waitLines(t, d, "guard pass failed again", 5)

	// The metrics endpoint: a scrape waits in the accept queue while
	// http.Server retries its accept every ≤1 s; one line for all of it.
	scraped := make(chan error, 1)
	go func() {
		c := &http.Client{Timeout: 60 * time.Second}
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		scraped <- err
	}()
	const serverErr = "metrics endpoint: server error"
	checkFDLine(t, "metrics endpoint", waitLines(t, d, serverErr, 1)[0])

	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	checkFDLine(t, "reload", waitLines(t, d, "signal handling failed", 1)[0])
	if err := d.Cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	checkFDLine(t, "upgrade", waitLines(t, d, "upgrade failed", 1)[0])

	// More failing guard passes after all that, still no second warning.
	waitLines(t, d, "guard pass failed again", len(logLines(d, "guard pass failed again"))+5)
	failedPasses := len(logLines(d, "guard pass failed again")) + 1
	raise()

	if err := <-scraped; err != nil {
		t.Errorf("the scrape that waited during the exhaustion: %v", err)
	}
	waitLines(t, d, "metrics endpoint accepts connections again", 1)
	waitLines(t, d, "looking for foreign sockets works again", 1)
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLines(t, d, "zone reloaded", 1)
	testkit.ScrapeRetry(t, url)

	for msg, want := range map[string]int{guardMsg: 1, serverErr: 1, "signal handling failed": 1, "upgrade failed": 1,
		"metrics endpoint accepts connections again": 1, "looking for foreign sockets works again": 1} {
		if got := len(logLines(d, msg)); got != want {
			t.Errorf("%q logged %d times, want %d", msg, got, want)
		}
	}
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d:\n%s", code, d.Stderr)
	}
	if testing.Verbose() {
		for _, m := range []string{guardMsg, serverErr, "signal handling failed", "upgrade failed", "metrics endpoint accepts", "looking for foreign sockets works"} {
			for _, l := range logLines(d, m) {
				t.Logf("logged: %v", l)
			}
		}
	}
	t.Logf("attack: daemon held at its descriptor limit (soft limit %d, %d descriptors open): guard failed %d passes, 1 warning; HUP, USR2 and the metrics endpoint one line each naming EMFILE and the fix; after the limit was raised: scrape and HUP reload ok",
		n, len(held), failedPasses)
}
