//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
	"github.com/shardd/shardd/cmd/internal/tooltest"

	"golang.org/x/sys/unix"
)

// shardd is the daemon under test, built with the race detector on first
// use (testkit.Binary): a run of tests that start no daemon builds nothing.
var shardd = testkit.NewBinary("shardd", ".", "-race")

// sharddBin returns the race-built daemon's path, building it once.
func sharddBin(t testing.TB) string {
	t.Helper()
	return shardd.Path(t)
}

func TestMain(m *testing.M) {
	// The race runtime sleeps 1 s (atexit_sleep_ms) before every exit of
	// a race-built process: each stop of a daemon under test took 1 s, an
	// idle stop of the plain binary takes milliseconds. Races are still
	// reported when they happen and still make the exit code 66. Every
	// daemon a test starts (and each one an upgrade execs) inherits this.
	if _, set := os.LookupEnv("GORACE"); !set {
		_ = os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	code := m.Run()
	testkit.RemoveBinDir()
	os.Exit(code)
}

// daemon is a shardd process started by a test.
type daemon = testkit.Process

func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	return startDaemonAs(t, nil, args...)
}

// startDaemonAs starts shardd as the given user (nil: as the test).
func startDaemonAs(t *testing.T, cred *syscall.Credential, args ...string) *daemon {
	t.Helper()
	return startDaemonBin(t, sharddBin(t), cred, args...)
}

// startDaemonBin starts the shardd binary at bin (a copy an upgrade test
// replaces) as the given user.
func startDaemonBin(t *testing.T, bin string, cred *syscall.Credential, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--log-format", "json"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return testkit.Start(t, "shardd", cmd)
}

func TestDaemonServesCountsAndStops(t *testing.T) {
	d := startDaemon(t, "--shards", "2", "--metrics", "127.0.0.1:0", "127.0.0.1:0", "[::1]:0")
	var targets []netip.AddrPort
	for i := 0; i < 2; i++ {
		l := d.WaitLine(t, "listening")
		for _, field := range []string{"addr", "proto", "shards", "pinned_cpus", "batch", "rcvbuf", "sndbuf", "handler"} {
			if _, ok := l[field]; !ok {
				t.Errorf("listening line lacks %q: %v", field, l)
			}
		}
		targets = append(targets, netip.MustParseAddrPort(l["bound"].(string)))
	}
	metricsAddr := d.WaitLine(t, "serving metrics")["addr"].(string)

	const flows, perFlow = 40, 5
	payload := []byte("shardd binary test")
	for _, to := range targets {
		network := "udp4"
		if to.Addr().Is6() {
			network = "udp6"
		}
		for f := 0; f < flows; f++ {
			c, err := net.ListenUDP(network, nil)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			for i := 0; i < perFlow; i++ {
				if _, err := c.WriteToUDPAddrPort(payload, to); err != nil {
					t.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(testkit.WaitTimeout))
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil || !bytes.Equal(buf[:n], payload) || from.Port() != to.Port() {
					t.Fatalf("echo from %v: %q from %v, %v", to, buf[:n], from, err)
				}
			}
			c.Close()
		}
	}
	// Every reply was read: the shards publish a batch's counters before
	// sending its replies, so one scrape must already count them all.
	want := float64(2 * flows * perFlow)
	text := testkit.Scrape(t, "http://"+metricsAddr+"/metrics")
	for _, name := range []string{"shardd_rx_packets_total", "shardd_tx_packets_total"} {
		got, series := testkit.SumMetric(t, text, name)
		if got != want || series != 4 {
			t.Errorf("%s: sum %v over %d series, want %v over 4 (2 listeners x 2 shards)", name, got, series, want)
		}
	}
	if got, _ := testkit.SumMetric(t, text, "shardd_rx_bytes_total"); got != want*float64(len(payload)) {
		t.Errorf("shardd_rx_bytes_total = %v", got)
	}
	for _, name := range []string{"shardd_truncated_total", "shardd_handler_errors_total", "shardd_send_errors_total", "shardd_kernel_drops_total", "shardd_rx_batch_size_count", "shardd_shard_imbalance", "shardd_host_udp_rcvbuf_errors_total", "shardd_host_udp_mem_errors_total", "shardd_host_udp_in_errors_total"} {
		if _, series := testkit.SumMetric(t, text, name); series == 0 {
			t.Errorf("metric %s missing", name)
		}
	}
	if h := testkit.Scrape(t, "http://"+metricsAddr+"/healthz"); h != "ok\n" {
		t.Errorf("/healthz = %q", h)
	}

	// "Exit 0 within 2 s" is the --drain-timeout the daemon measures
	// itself: a stop that overruns it logs so and exits 1. The wall-clock
	// time seen from here also holds the scheduling of a loaded machine,
	// so it is logged, not asserted.
	code, took := d.Stop(t, syscall.SIGTERM)
	if code != 0 || strings.Contains(d.Stderr.String(), "graceful stop timed out") {
		t.Fatalf("SIGTERM: exit %d after %v, want 0 within the drain timeout:\n%s", code, took, d.Stderr)
	}
	t.Logf("SIGTERM: exit 0 after %v", took)
	var summed float64
	summaries := 0
	for _, line := range strings.Split(d.Stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "shard summary" {
			summaries++
			summed += m["rx_packets"].(float64)
		}
	}
	if summaries != 4 || summed != want {
		t.Fatalf("%d summary lines with %v datagrams, want 4 lines and %v:\n%s", summaries, summed, want, d.Stderr)
	}
}

func TestSignalsThatDoNotStop(t *testing.T) {
	d := startDaemon(t, "--shards", "1", "127.0.0.1:0")
	to := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string))
	for _, s := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1} {
		if err := d.Cmd.Process.Signal(s); err != nil {
			t.Fatal(err)
		}
		d.WaitLine(t, "signal ignored")
	}
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("still here"))
	_ = c.SetReadDeadline(time.Now().Add(testkit.WaitTimeout))
	buf := make([]byte, 32)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "still here" {
		t.Fatalf("after HUP/USR1: %q %v", buf[:n], err)
	}
	if code, _ := d.Stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("SIGINT: exit %d", code)
	}
}

// runOnce runs shardd expecting it to refuse to start.
func runOnce(t *testing.T, cred *syscall.Credential, args ...string) (code int, stderr string) {
	t.Helper()
	cmd := exec.Command(sharddBin(t), args...)
	var eb bytes.Buffer
	cmd.Stderr = &eb
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(testkit.WaitTimeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("shardd %v kept running; want a start-up failure", args)
	}
	return cmd.ProcessState.ExitCode(), eb.String()
}

func assertOneLine(t *testing.T, stderr string, wants ...string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "shardd: ") {
		t.Errorf("want one line starting with \"shardd: \", got %q", stderr)
	}
	for _, w := range wants {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q lacks %q", stderr, w)
		}
	}
}

func TestRuntimeErrors(t *testing.T) {
	t.Run("port held without SO_REUSEPORT", func(t *testing.T) {
		plain, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		port := plain.LocalAddr().(*net.UDPAddr).Port
		code, stderr := runOnce(t, nil, fmt.Sprintf("127.0.0.1:%d", port))
		if code != exitRuntime {
			t.Errorf("exit %d, want %d", code, exitRuntime)
		}
		assertOneLine(t, stderr, "address already in use", "without SO_REUSEPORT", fmt.Sprintf("ss -uapn 'sport = :%d'", port))
	})
	t.Run("metrics address in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		code, stderr := runOnce(t, nil, "--metrics", ln.Addr().String(), "127.0.0.1:0")
		if code != exitRuntime {
			t.Errorf("exit %d, want %d", code, exitRuntime)
		}
		assertOneLine(t, stderr, "cannot serve metrics on "+ln.Addr().String(), "pick a free address for --metrics")
	})
	t.Run("address not on this host", func(t *testing.T) {
		// TEST-NET-1 (RFC 5737) is never assigned here; bind fails, nothing is sent.
		code, stderr := runOnce(t, nil, "192.0.2.1:5353")
		if code != exitRuntime {
			t.Errorf("exit %d, want %d", code, exitRuntime)
		}
		assertOneLine(t, stderr, "cannot assign requested address", "no interface on this host has that address")
	})

	if os.Getuid() != 0 {
		t.Skip("the cases below run shardd as another user, which needs root")
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	t.Run("low port without privilege", func(t *testing.T) {
		code, stderr := runOnce(t, nobody, "127.0.0.1:7")
		if code != exitRuntime {
			t.Errorf("exit %d, want %d", code, exitRuntime)
		}
		assertOneLine(t, stderr, "permission denied", "CAP_NET_BIND_SERVICE")
	})
	t.Run("receive buffer capped without privilege", func(t *testing.T) {
		capBytes, err := os.ReadFile("/proc/sys/net/core/rmem_max")
		if err != nil {
			t.Skip(err)
		}
		rmemMax, _ := strconv.Atoi(strings.TrimSpace(string(capBytes)))
		ask := 4 * rmemMax
		d := startDaemonAs(t, nobody, "--shards", "1", "--rcvbuf", strconv.Itoa(ask), "127.0.0.1:0")
		l := d.WaitLine(t, "listening")
		if got := int(l["rcvbuf"].(float64)); got >= 2*ask || got <= 0 {
			t.Fatalf("rcvbuf %d without CAP_NET_ADMIN, asked %d over a cap of %d", got, ask, rmemMax)
		}
		w := d.WaitLine(t, "receive buffer is smaller than asked; bursts may be dropped")
		if !strings.Contains(w["fix"].(string), "net.core.rmem_max") {
			t.Fatalf("warning without the fix: %v", w)
		}
		if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})
	t.Run("port held by another user", func(t *testing.T) {
		// A root-owned SO_REUSEPORT socket: the kernel refuses to let a
		// process of another uid join its group (the port-hijack guard).
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			t.Fatal(err)
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		sa, _ := unix.Getsockname(fd)
		port := sa.(*unix.SockaddrInet4).Port
		code, stderr := runOnce(t, nobody, fmt.Sprintf("127.0.0.1:%d", port))
		if code != exitRuntime {
			t.Errorf("exit %d, want %d", code, exitRuntime)
		}
		assertOneLine(t, stderr, "address already in use", "another user's process")
	})
}

// TestSocat checks shardd against a real third-party client.
func TestSocat(t *testing.T) {
	socat := requireTool(t, "socat")
	d := startDaemon(t, "--shards", "2", ":0")
	port := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string)).Port()
	for _, target := range []string{fmt.Sprintf("UDP4:127.0.0.1:%d", port), fmt.Sprintf("UDP6:[::1]:%d", port)} {
		msg := "hello from socat via " + target + "\n"
		cmd := exec.Command(socat, append(socatTimeouts(target), "-", target)...)
		cmd.Stdin = strings.NewReader(msg)
		out, err := cmd.Output()
		if err != nil || string(out) != msg {
			t.Errorf("socat %s: got %q, %v", target, out, err)
		}
	}
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// socatTimeouts: how long socat waits for the echo after its stdin ended
// (-t) and for any traffic at all (-T). Over TCP the daemon closes on the
// client's EOF, which ends socat at once, so the bound is only for a hang.
// Over UDP nothing ends the exchange: socat always waits all of -t, which
// must cover a loaded machine's scheduling (it was 2 s).
func socatTimeouts(target string) []string {
	if strings.HasPrefix(target, "TCP") {
		return []string{"-t", "60", "-T", "60"}
	}
	return []string{"-t", "5", "-T", "60"}
}

// requireTool finds a third-party program (see tooltest.Require).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	return tooltest.Require(t, name)
}

// TestSocatTCP checks --proto udp,tcp on one port with a real client over
// both transports and both families.
func TestSocatTCP(t *testing.T) {
	socat := requireTool(t, "socat")
	d := startDaemon(t, "--shards", "2", "--proto", "udp,tcp", "--metrics", "127.0.0.1:0", ":0")
	port := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string)).Port()
	metricsAddr := d.WaitLine(t, "serving metrics")["addr"].(string)
	for _, target := range []string{"TCP4:127.0.0.1:%d", "TCP6:[::1]:%d", "UDP4:127.0.0.1:%d"} {
		target = fmt.Sprintf(target, port)
		msg := strings.Repeat("hello from socat via "+target+"\n", 100)
		cmd := exec.Command(socat, append(socatTimeouts(target), "-", target)...)
		cmd.Stdin = strings.NewReader(msg)
		out, err := cmd.Output()
		if err != nil || string(out) != msg {
			t.Errorf("socat %s: got %d bytes (want %d), %v", target, len(out), len(msg), err)
		}
	}
	text := testkit.Scrape(t, "http://"+metricsAddr+"/metrics")
	if got, _ := testkit.SumMetric(t, text, "shardd_tcp_accepted_total"); got != 2 {
		t.Errorf("shardd_tcp_accepted_total = %v, want 2", got)
	}
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(d.Stderr.String(), `"proto":"tcp"`) {
		t.Errorf("no TCP summary lines:\n%s", d.Stderr)
	}
}

func TestGuardReportsAForeignSocket(t *testing.T) {
	d := startDaemon(t, "--shards", "2", "--guard-interval", "100ms", "--metrics", "127.0.0.1:0", "127.0.0.1:0")
	port := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string)).Port()
	metricsAddr := d.WaitLine(t, "serving metrics")["addr"].(string)
	if got, _ := testkit.SumMetric(t, testkit.Scrape(t, "http://"+metricsAddr+"/metrics"), "shardd_foreign_sockets"); got != 0 {
		t.Fatalf("shardd_foreign_sockets = %v before any foreign socket", got)
	}
	testkit.BindReusePort(t, int(port))
	w := d.WaitLine(t, "a socket that is not shardd's can take this listener's traffic")
	if int(w["pid"].(float64)) != os.Getpid() || w["process"] == "" || int(w["uid"].(float64)) != os.Getuid() {
		t.Fatalf("warning does not name the test process: %v", w)
	}
	waitMetric := time.Now().Add(testkit.WaitTimeout)
	for {
		got, _ := testkit.SumMetric(t, testkit.Scrape(t, "http://"+metricsAddr+"/metrics"), "shardd_foreign_sockets")
		if got == 1 {
			break
		}
		if time.Now().After(waitMetric) {
			t.Fatalf("shardd_foreign_sockets = %v, want 1", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestExclusiveRefusesAnOccupiedPort(t *testing.T) {
	// The foreign socket binds port 0 itself: a port picked, released and
	// bound again could be taken in between by another test's bind.
	sa, err := unix.Getsockname(testkit.BindReusePort(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*unix.SockaddrInet4).Port
	code, stderr := runOnce(t, nil, "--exclusive", fmt.Sprintf("127.0.0.1:%d", port))
	if code != exitRuntime {
		t.Errorf("exit %d, want %d", code, exitRuntime)
	}
	assertOneLine(t, stderr, "already has sockets of other processes", fmt.Sprintf("pid %d", os.Getpid()))
}

func TestInspect(t *testing.T) {
	d := startDaemon(t, "--shards", "2", "--proto", "udp,tcp", "--metrics", "127.0.0.1:0", "127.0.0.1:0")
	port := int(netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string)).Port())
	metricsURL := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	for i := 0; i < 10; i++ {
		c, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("count me"))
		_ = c.SetReadDeadline(time.Now().Add(testkit.WaitTimeout))
		if _, err := c.Read(make([]byte, 16)); err != nil {
			t.Fatalf("exchange %d: %v", i, err) // an unanswered datagram would make the count below a guess
		}
		c.Close()
	}
	var socks []struct {
		Received  *float64 `json:"received"`
		Proto     string   `json:"proto"`
		Process   string   `json:"process"`
		PIDs      []int    `json:"pids"`
		ReusePort *bool    `json:"reuseport"`
		Group     string   `json:"group"`
		Flags     []string `json:"flags"`
	}
	inspect := func(cred *syscall.Credential, args ...string) (string, string, int) {
		cmd := exec.Command(sharddBin(t), append([]string{"inspect"}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		_ = cmd.Run()
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	}
	out, stderr, code := inspect(nil, "--json", "--metrics", metricsURL, strconv.Itoa(port))
	if code != 0 || json.Unmarshal([]byte(out), &socks) != nil {
		t.Fatalf("inspect --json: exit %d, %q %q", code, out, stderr)
	}
	groups := map[string]int{}
	var received float64
	for _, s := range socks {
		if s.Received == nil {
			t.Errorf("no received count with --metrics: %+v", s)
		} else if s.Proto == "udp" {
			received += *s.Received
		}
		if s.Process != "shardd" || len(s.PIDs) != 1 || s.PIDs[0] != d.Cmd.Process.Pid || s.ReusePort == nil || !*s.ReusePort || len(s.Flags) != 0 {
			t.Errorf("daemon socket misreported: %+v", s)
		}
		groups[s.Group]++
	}
	if len(socks) != 4 || groups["udp-1"] != 2 || groups["tcp-1"] != 2 {
		t.Fatalf("want 2 UDP and 2 TCP sockets in one group each: %+v", socks)
	}
	if received != 10 {
		t.Fatalf("inspect --metrics says the UDP sockets received %v datagrams, want 10", received)
	}
	testkit.BindReusePort(t, port)
	out, _, _ = inspect(nil, fmt.Sprintf("127.0.0.1:%d", port))
	if !strings.Contains(out, "REUSEPORT") || !strings.Contains(out, "not-shardd") || strings.Count(out, "shardd ") < 4 {
		t.Fatalf("table:\n%s", out)
	}
	if _, stderr, code := inspect(nil, "localhost:53"); code != exitUsage || !strings.Contains(stderr, `address "localhost:53"`) {
		t.Fatalf("bad ADDR: exit %d, %q", code, stderr)
	}
	if os.Getuid() == 0 {
		out, stderr, code := inspect(&syscall.Credential{Uid: 65534, Gid: 65534}, strconv.Itoa(port))
		if code != 0 || !strings.Contains(out, "UNCONN") || !strings.Contains(stderr, "could not read the descriptors") {
			t.Fatalf("as nobody: exit %d\n%s\n%s", code, out, stderr)
		}
	}
}

// TestUpgradeLosesNothing upgrades the daemon ten times (SIGUSR2, the new
// process inherits every socket) under a steady UDP stream and a stream of
// TCP connections: every datagram sent is received by one of the eleven
// processes, none is dropped, and no connection is refused.
func TestUpgradeLosesNothing(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "shardd.pid")
	d := startDaemon(t, "--shards", "2", "--proto", "udp,tcp", "--pidfile", pidfile, "--metrics", "127.0.0.1:0", "127.0.0.1:0")
	port := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string)).Port()
	metricsURL := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	readPid := func() int {
		b, _ := os.ReadFile(pidfile)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid
	}
	var pids []int
	t.Cleanup(func() { // whatever this test started and left running
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	})

	var tcpFailed, tcpOK atomic.Uint64
	stop := make(chan struct{})
	sender := testkit.StartSender(t, to, []byte("through the upgrade"))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			// Generous timeouts: a SYN the kernel drops from a full
			// backlog is only retried after a second, and a loaded
			// machine may not run the daemon for a while; a refused or
			// reset connection still fails at once.
			c, err := net.DialTimeout("tcp", to.String(), testkit.WaitTimeout)
			if err != nil {
				tcpFailed.Add(1)
				continue
			}
			_ = c.SetDeadline(time.Now().Add(testkit.WaitTimeout))
			_, _ = c.Write([]byte("x"))
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				tcpFailed.Add(1)
			} else {
				tcpOK.Add(1)
			}
			c.Close()
		}
	}()

	// Each process serves traffic of both kinds before it is upgraded:
	// wait for exchanges and datagrams that started after it took over,
	// not for a fixed time.
	traffic := func(what string) {
		t.Helper()
		okFrom, sentFrom := tcpOK.Load(), sender.Sent()
		for deadline := time.Now().Add(testkit.WaitTimeout); tcpOK.Load() < okFrom+5 || sender.Sent() < sentFrom+100; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) || tcpFailed.Load() > 0 {
				t.Fatalf("%s: %d TCP exchanges (%d failed), %d datagrams in %v", what, tcpOK.Load()-okFrom, tcpFailed.Load(), sender.Sent()-sentFrom, testkit.WaitTimeout)
			}
		}
	}
	traffic("before the first upgrade")
	const upgrades = 10
	for i := 0; i < upgrades; i++ {
		old := readPid()
		pids = append(pids, old)
		if err := syscall.Kill(old, syscall.SIGUSR2); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(testkit.WaitTimeout)
		for readPid() == old {
			if time.Now().After(deadline) {
				t.Fatalf("upgrade %d: the pidfile still names %d:\n%s", i+1, old, d.Stderr)
			}
			time.Sleep(10 * time.Millisecond)
		}
		traffic(fmt.Sprintf("after upgrade %d", i+1))
	}
	close(stop)
	sender.Stop()
	wg.Wait()
	last := readPid()
	pids = append(pids, last)

	// udpSummed adds up the UDP shard summaries (rx, kernel drops) the
	// exited processes logged, and counts every summary line.
	type line struct {
		Msg        string  `json:"msg"`
		Proto      string  `json:"proto"`
		RxPackets  float64 `json:"rx_packets"`
		KernelDrop float64 `json:"kernel_drops"`
	}
	udpSummed := func() (rx, drops float64, summaries int) {
		for _, l := range strings.Split(d.Stderr.String(), "\n") {
			var m line
			if json.Unmarshal([]byte(l), &m) == nil && m.Msg == "shard summary" {
				summaries++
				if m.Proto == "udp" {
					rx += m.RxPackets
					drops += m.KernelDrop
				}
			}
		}
		return rx, drops, summaries
	}
	// A datagram sent is not yet in a socket queue when sendmsg returns
	// if the kernel defers loopback delivery (a loaded machine does), and
	// one that arrives after the stop's fence is a kernel drop. So before
	// the stop, wait until the processes account for every datagram: the
	// summaries of the old ones (all exited) plus the live one's counters.
	for deadline := time.Now().Add(testkit.WaitTimeout); ; time.Sleep(20 * time.Millisecond) {
		rx, _, summaries := udpSummed()
		if summaries >= 4*upgrades {
			if text, err := testkit.Get(metricsURL); err == nil && rx+testkit.MetricSum(text, "shardd_rx_packets_total", `proto="udp"`) == float64(sender.Sent()) {
				break
			}
		}
		if time.Now().After(deadline) {
			break // the assertions below say what is missing
		}
	}
	if err := syscall.Kill(last, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// Every process logs its per-shard summary when it exits: upgrades+1
	// processes, 2 UDP and 2 TCP shards each.
	var rx, drops float64
	deadline := time.Now().Add(testkit.WaitTimeout)
	for {
		var summaries int
		rx, drops, summaries = udpSummed()
		if summaries >= 4*(upgrades+1) {
			break
		}
		if time.Now().After(deadline) {
			var states []string
			for _, p := range append([]int{d.Cmd.Process.Pid}, pids...) {
				st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
				states = append(states, fmt.Sprintf("%d: %.60s", p, st))
			}
			t.Fatalf("%d summary lines, want %d; processes: %v\n%s", summaries, 4*(upgrades+1), states, d.Stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if float64(sender.Sent()) != rx || drops != 0 {
		t.Fatalf("sent %d datagrams through %d upgrades: received %v, kernel drops %v", sender.Sent(), upgrades, rx, drops)
	}
	if tcpFailed.Load() != 0 || tcpOK.Load() < 50 {
		t.Fatalf("TCP through %d upgrades: %d exchanges failed, %d succeeded", upgrades, tcpFailed.Load(), tcpOK.Load())
	}
	if n := strings.Count(d.Stderr.String(), "upgrade handed over"); n != upgrades {
		t.Fatalf("%d hand-overs logged, want %d", n, upgrades)
	}
}

func TestUpgradeCommandNeedsAPidfile(t *testing.T) {
	code, stderr := runOnce(t, nil, "upgrade")
	if code != exitUsage || !strings.Contains(stderr, "--pidfile FILE is required") {
		t.Fatalf("exit %d, %q", code, stderr)
	}
	code, stderr = runOnce(t, nil, "upgrade", "--pidfile", "/nonexistent/pid")
	if code != exitRuntime || !strings.Contains(stderr, "no such file") {
		t.Fatalf("exit %d, %q", code, stderr)
	}
}

// TestTwoProcessesShareThePort: a second shardd of the same user on the same
// ADDR joins the reuseport group and takes a share of the traffic.
func TestTwoProcessesShareThePort(t *testing.T) {
	a := startDaemon(t, "--shards", "1", "--handler", "discard", "--metrics", "127.0.0.1:0", "127.0.0.1:0")
	bound := a.WaitLine(t, "listening")["bound"].(string)
	aMetrics := "http://" + a.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	b := startDaemon(t, "--shards", "1", "--handler", "discard", "--metrics", "127.0.0.1:0", bound)
	b.WaitLine(t, "listening")
	bMetrics := "http://" + b.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	to := netip.MustParseAddrPort(bound)
	for f := 0; f < 64; f++ {
		c, err := net.ListenUDP("udp4", nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			_, _ = c.WriteToUDPAddrPort([]byte("share"), to)
		}
		c.Close()
	}
	// Stop only once both count all 320: a datagram still on its way
	// when the stop fences the socket would be a kernel drop.
	for deadline := time.Now().Add(testkit.WaitTimeout); ; time.Sleep(10 * time.Millisecond) {
		ta, errA := testkit.Get(aMetrics)
		tb, errB := testkit.Get(bMetrics)
		if errA == nil && errB == nil && testkit.MetricSum(ta, "shardd_rx_packets_total", "")+testkit.MetricSum(tb, "shardd_rx_packets_total", "") == 320 {
			break
		}
		if time.Now().After(deadline) {
			break // the summaries below say what is missing
		}
	}
	var total float64
	for _, d := range []*daemon{a, b} {
		if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("exit %d", code)
		}
		var rx float64
		for _, l := range strings.Split(d.Stderr.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "shard summary" {
				rx += m["rx_packets"].(float64)
			}
		}
		if rx == 0 {
			t.Fatalf("one of the two processes got nothing of 64 flows:\n%s", d.Stderr)
		}
		total += rx
	}
	if total != 320 {
		t.Fatalf("the two processes received %v of 320", total)
	}
}

// TestFailedUpgradeKeepsServing replaces the binary with one that exits at
// once: the upgrade fails, the old process logs why and keeps serving, and a
// later upgrade to a working binary succeeds.
func TestFailedUpgradeKeepsServing(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "shardd")
	copyFile := func(src string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(bin) // a new inode, as an install does
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(sharddBin(t))
	pidfile := filepath.Join(dir, "pid")
	d := startDaemonBin(t, bin, nil, "--shards", "1", "--pidfile", pidfile, "--metrics", "127.0.0.1:0", "127.0.0.1:0")
	to := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string))
	metricsURL := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"

	broken := filepath.Join(dir, "broken.sh")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(broken)
	_ = d.Cmd.Process.Signal(syscall.SIGUSR2)
	d.WaitLine(t, "upgrade failed; this process keeps serving and a later upgrade can be tried")
	got, _ := testkit.Exchange(t, "udp4", to, []byte("still the old one"))
	if string(got) != "still the old one" {
		t.Fatalf("after a failed upgrade: %q", got)
	}
	if v, _ := testkit.SumMetric(t, testkit.Scrape(t, metricsURL), `shardd_upgrades_total`); v != 1 {
		t.Fatalf("shardd_upgrades_total sums to %v after one failure", v)
	}

	copyFile(sharddBin(t))
	_ = d.Cmd.Process.Signal(syscall.SIGUSR2)
	newPid := int(d.WaitLine(t, "upgrade handed over; this process finishes what it has and exits")["new_pid"].(float64))
	defer syscall.Kill(newPid, syscall.SIGKILL) // only if the test fails before the TERM below
	got, _ = testkit.Exchange(t, "udp4", to, []byte("the new one"))
	if string(got) != "the new one" {
		t.Fatalf("after the second upgrade: %q", got)
	}
	text := testkit.Scrape(t, metricsURL) // served by the new process now
	if !strings.Contains(text, `shardd_upgrades_total{result="ok"} 1`) || !strings.Contains(text, `shardd_upgrades_total{result="failed"} 1`) {
		t.Fatalf("the new process does not carry the upgrade counts (ok 1, failed 1):\n%s", text)
	}
	_ = syscall.Kill(newPid, syscall.SIGTERM)
}

// TestSocketActivation passes sockets the way systemd does (LISTEN_PID,
// LISTEN_FDS, descriptors from 3) and listens on $NOTIFY_SOCKET: shardd
// serves the sockets it was given, adds the missing shards itself, and says
// READY=1 and STOPPING=1.
func TestSocketActivation(t *testing.T) {
	files, port := testkit.ActivationSockets(t, netip.MustParseAddr("127.0.0.1"))
	notifyPath := filepath.Join(t.TempDir(), "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=2 exec "$0" "$@"`, sharddBin(t), "--log-format", "json", "--shards", "2", "--proto", "udp,tcp", addr)
	cmd.ExtraFiles = files
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath)
	p := testkit.Start(t, "shardd", cmd)
	stderr := p.Stderr
	for _, f := range cmd.ExtraFiles {
		f.Close() // the daemon has them now
	}
	readNotify := func() string {
		_ = notify.SetReadDeadline(time.Now().Add(testkit.WaitTimeout))
		buf := make([]byte, 256)
		n, err := notify.Read(buf)
		if err != nil {
			t.Fatalf("no sd_notify message: %v\n%s", err, stderr.String())
		}
		return string(buf[:n])
	}
	if msg := readNotify(); msg != fmt.Sprintf("READY=1\nMAINPID=%d", cmd.Process.Pid) {
		t.Fatalf("notify %q, want READY=1 with MAINPID %d", msg, cmd.Process.Pid)
	}
	for deadline := time.Now().Add(testkit.WaitTimeout); !strings.Contains(stderr.String(), "serving the sockets systemd passed"); {
		if time.Now().After(deadline) {
			t.Fatalf("activation not noticed:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond) // stderr is copied through a pipe
	}
	got, _ := testkit.Exchange(t, "udp4", netip.MustParseAddrPort(addr), []byte("activated"))
	if string(got) != "activated" {
		t.Fatalf("UDP: %q", got)
	}
	c := testkit.DialTCP(t, addr)
	_, _ = c.Write([]byte("tcp activated"))
	_ = c.SetReadDeadline(time.Now().Add(testkit.WaitTimeout))
	buf := make([]byte, 13)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "tcp activated" {
		t.Fatalf("TCP: %q %v", buf, err)
	}
	c.Close()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if msg := readNotify(); msg != "STOPPING=1" {
		t.Fatalf("notify %q, want STOPPING=1", msg)
	}
	<-p.Exited
	if code := p.Code; code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "receive buffer is smaller than asked") {
		t.Fatalf("the activated socket did not get --rcvbuf:\n%s", stderr.String())
	}
	// Shard 0 of each transport was systemd's socket, shard 1 bound itself.
	if strings.Count(stderr.String(), `"msg":"shard summary"`) != 4 {
		t.Fatalf("want 4 shard summaries:\n%s", stderr.String())
	}
}

// TestSystemdSocketActivate runs shardd under Debian's systemd-socket-activate,
// which binds the socket, waits for the first datagram and execs shardd with
// LISTEN_FDS: that first datagram, queued before shardd existed, is answered.
func TestSystemdSocketActivate(t *testing.T) {
	activate := requireTool(t, "systemd-socket-activate")
	// Below the ephemeral range: a released port-0 bind could go to
	// another test's bind before the activator's.
	addr := fmt.Sprintf("127.0.0.1:%d", testkit.FreeUDPPort(t))
	// The activator's socket has no SO_REUSEPORT, so one shard serves it.
	cmd := exec.Command(activate, "--datagram", "-l", addr, sharddBin(t), "--log-format", "json", "--shards", "1", addr)
	p := testkit.Start(t, "shardd", cmd)
	stderr := p.Stderr
	var got []byte
	for deadline := time.Now().Add(testkit.WaitTimeout); ; {
		cl, err := net.ListenUDP("udp4", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = cl.WriteToUDPAddrPort([]byte("wake up"), netip.MustParseAddrPort(addr))
		_ = cl.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 16)
		n, _, err := cl.ReadFromUDPAddrPort(buf)
		cl.Close()
		if err == nil {
			got = buf[:n]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer through systemd-socket-activate:\n%s", stderr.String())
		}
	}
	if string(got) != "wake up" {
		t.Fatalf("got %q", got)
	}
	for deadline := time.Now().Add(testkit.WaitTimeout); !strings.Contains(stderr.String(), "serving the sockets systemd passed"); {
		if time.Now().After(deadline) {
			t.Fatalf("shardd did not take the activated socket:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM) // exec'd: the activator's pid is shardd's
	<-p.Exited
	if code := p.Code; code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
}

// gatedBin is a copy of the daemon binary that a test can turn into a gate:
// an upgrade then execs a script that waits for the test to open the gate
// before it execs the real daemon. The upgrade stays under way for as long
// as the test needs, whatever the machine's load: no race between the
// signals a test sends and the new process becoming ready.
type gatedBin struct{ path, gate string }

func newGatedBin(t *testing.T) *gatedBin {
	t.Helper()
	dir := t.TempDir()
	g := &gatedBin{path: filepath.Join(dir, "shardd"), gate: filepath.Join(dir, "gate")}
	b, err := os.ReadFile(sharddBin(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(g.path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return g
}

// hold replaces the binary (a new inode, as an install does) with the
// gate script; the descriptors and environment the upgrade passes go
// through the shell to the real daemon.
func (g *gatedBin) hold(t *testing.T) {
	t.Helper()
	script := fmt.Sprintf("#!/bin/sh\nwhile [ ! -e '%s' ]; do sleep 0.01; done\nexec '%s' \"$@\"\n", g.gate, sharddBin(t))
	_ = os.Remove(g.path)
	if err := os.WriteFile(g.path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func (g *gatedBin) open(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(g.gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// upgradeAtGate starts a gated shardd with shards and pidfile, waits until
// it listens, holds the gate and sends USR2: an upgrade is under way, its
// new process waiting at the gate. It returns the daemon, the address it
// listens on and the gate.
func upgradeAtGate(t *testing.T, shards, pidfile string) (*daemon, netip.AddrPort, *gatedBin) {
	t.Helper()
	g := newGatedBin(t)
	d := startDaemonBin(t, g.path, nil, "--shards", shards, "--pidfile", pidfile, "127.0.0.1:0")
	to := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string))
	g.hold(t)
	_ = d.Cmd.Process.Signal(syscall.SIGUSR2)
	return d, to, g
}

// TestSecondUpgradeIsRefused: a USR2 while an upgrade is under way is
// refused, and the first upgrade completes. The new process is held at the
// gate until the refusal is logged: without it, a fast new process could
// hand over before the second USR2 is read, and the daemon would pick
// either (both are ready in its select).
func TestSecondUpgradeIsRefused(t *testing.T) {
	d, _, g := upgradeAtGate(t, "1", filepath.Join(t.TempDir(), "pid"))
	d.WaitLine(t, "upgrade: new process started")
	_ = d.Cmd.Process.Signal(syscall.SIGUSR2)
	d.WaitLine(t, "upgrade refused: another upgrade is in progress")
	g.open(t)
	newPid := int(d.WaitLine(t, "upgrade handed over; this process finishes what it has and exits")["new_pid"].(float64))
	_ = syscall.Kill(newPid, syscall.SIGTERM)
}

// TestTermDuringUpgrade: a TERM while an upgrade is under way must not stop
// the new process's sockets: the old process waits for the upgrade's
// outcome and, once it handed over, leaves the sockets to the new process.
// The test sends TERM only once the daemon has handled USR2 (its
// "upgrading" line; the upgrade is marked running before the next signal is
// read), and holds the new process at the gate until the TERM is handled
// too, so the order is the one under test on any machine.
func TestTermDuringUpgrade(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	d, to, g := upgradeAtGate(t, "2", pidfile)
	d.WaitLine(t, "upgrading")
	_ = d.Cmd.Process.Signal(syscall.SIGTERM)
	d.WaitLine(t, "stopping")
	g.open(t)
	newPid := int(d.WaitLine(t, "the upgrade handed over before the stop; leaving the sockets to the new process")["new_pid"].(float64))
	defer syscall.Kill(newPid, syscall.SIGTERM)
	// The old process exits (and is reaped) while the new one, which shares
	// its stderr, goes on: watch /proc, not the pipe.
	oldProc := fmt.Sprintf("/proc/%d", d.Cmd.Process.Pid)
	for deadline := time.Now().Add(testkit.WaitTimeout); ; {
		if _, err := os.Stat(oldProc); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old process did not exit:\n%s", d.Stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(pidfile)
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid != newPid || newPid == d.Cmd.Process.Pid {
		t.Fatalf("pidfile names %d after the hand-over to %d (old %d):\n%s", pid, newPid, d.Cmd.Process.Pid, d.Stderr)
	}
	if strings.Count(d.Stderr.String(), `"msg":"shard summary"`) != 2 {
		// The old process logs its two UDP shards' summaries; a new one that
		// had stopped too would add its own.
		t.Fatalf("want exactly the old process's 2 shard summaries:\n%s", d.Stderr)
	}
	for i := 0; i < 20; i++ { // many source ports: every shard socket must still answer
		got, _ := testkit.Exchange(t, "udp4", to, []byte("after TERM"))
		if string(got) != "after TERM" {
			t.Fatalf("new process: %q", got)
		}
	}
}
