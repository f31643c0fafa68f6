//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/ports"
	"github.com/shardd/shardd/cmd/internal/testkit"

	"golang.org/x/sys/unix"
)

// The hijack probe is this test binary run again as another user (nobody):
// init sees the variable and runs the probe instead of the tests.
const hijackProbeEnv = "SHARDD_HIJACK_PROBE"

// hijackAttempt is one bind the probe tries: a transport, an address and
// the options set before bind. TCP attempts that bind also listen.
type hijackAttempt struct {
	Proto  string   `json:"proto"` // "udp" or "tcp"
	Addr   string   `json:"addr"`  // "127.0.0.1:5353", "[::]:5353" (dual-stack)
	Opts   []string `json:"opts"`  // "reuseaddr", "reuseport", "bindtodevice"
	Errno  int      `json:"errno"` // 0: the bind (and listen) succeeded
	ErrMsg string   `json:"err,omitempty"`
}

func (a hijackAttempt) String() string {
	return fmt.Sprintf("%s %s %s", a.Proto, a.Addr, strings.Join(a.Opts, "+"))
}

// hijackReport is the probe's first line: who it ran as and what each bind did.
type hijackReport struct {
	UID, EUID, GID int
	// Controls are binds of free ports (and two SO_REUSEPORT sockets of
	// the probe on one port) with every option set: they must succeed, or
	// the refusals below would prove nothing.
	Controls []hijackAttempt
	Attempts []hijackAttempt
}

// hijackCounts is what the probe's sockets that did bind took.
type hijackCounts struct {
	UDP uint64 `json:"udp"` // datagrams received
	TCP uint64 `json:"tcp"` // connections accepted
}

func init() {
	if os.Getenv(hijackProbeEnv) != "1" {
		return
	}
	os.Exit(hijackProbe(os.Getenv("SHARDD_HIJACK_SPEC"), os.Stdin, os.Stdout))
}

// probeSocket creates, configures and binds one socket (and listens, for
// TCP); it returns the descriptor or the errno.
func probeSocket(a hijackAttempt) (int, error) {
	ap, err := netip.ParseAddrPort(a.Addr)
	if err != nil {
		return -1, err
	}
	var family int
	var sa unix.Sockaddr
	if ap.Addr().Is4() {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	typ := unix.SOCK_DGRAM
	if a.Proto == "tcp" {
		typ = unix.SOCK_STREAM
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	fail := func(err error) (int, error) { unix.Close(fd); return -1, err }
	if family == unix.AF_INET6 {
		// An IPv6 wildcard is dual-stack, as an attacker would want it.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			return fail(err)
		}
	}
	for _, o := range a.Opts {
		switch o {
		case "reuseaddr":
			err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		case "reuseport":
			err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		case "bindtodevice":
			// Unprivileged since Linux 5.7; a device-bound socket scores
			// higher in the kernel's lookup than shardd's.
			err = unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "lo")
		default:
			err = fmt.Errorf("unknown option %q", o)
		}
		if err != nil {
			return fail(fmt.Errorf("setsockopt %s: %w", o, err))
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail(err)
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, 128); err != nil {
			return fail(err)
		}
	}
	return fd, nil
}

func errnoOf(err error) int {
	var e syscall.Errno
	if errors.As(err, &e) {
		return int(e)
	}
	if err != nil {
		return -1
	}
	return 0
}

// hijackProbe runs as the other user: controls, then the attempts; it
// prints the report, then serves every socket that bound (counting what it
// steals) and answers each "count" line on in with the counts, until in
// closes.
func hijackProbe(spec string, in io.Reader, out io.Writer) int {
	var attempts []hijackAttempt
	if err := json.Unmarshal([]byte(spec), &attempts); err != nil {
		fmt.Fprintln(os.Stderr, "probe: bad spec:", err)
		return 2
	}
	rep := hijackReport{UID: os.Getuid(), EUID: os.Geteuid(), GID: os.Getgid()}
	var held []int
	for _, proto := range []string{"udp", "tcp"} {
		for _, opts := range [][]string{{"reuseaddr"}, {"reuseport"}, {"reuseaddr", "reuseport"}, {"reuseaddr", "reuseport", "bindtodevice"}} {
			for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
				c := hijackAttempt{Proto: proto, Addr: addr, Opts: opts}
				fd, err := probeSocket(c)
				c.Errno = errnoOf(err)
				if err != nil {
					c.ErrMsg = err.Error()
				} else {
					unix.Close(fd)
				}
				rep.Controls = append(rep.Controls, c)
			}
		}
		// Two sockets of this user on one port with SO_REUSEPORT: the
		// option works, so a refusal below is the uid rule's.
		first := hijackAttempt{Proto: proto, Addr: "127.0.0.1:0", Opts: []string{"reuseport"}}
		fd, err := probeSocket(first)
		first.Errno, first.ErrMsg = errnoOf(err), fmt.Sprint(err)
		rep.Controls = append(rep.Controls, first)
		if err == nil {
			sa, _ := unix.Getsockname(fd)
			second := hijackAttempt{Proto: proto, Addr: fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port), Opts: []string{"reuseport"}}
			fd2, err := probeSocket(second)
			second.Errno, second.ErrMsg = errnoOf(err), fmt.Sprint(err)
			rep.Controls = append(rep.Controls, second)
			if err == nil {
				unix.Close(fd2)
			}
			unix.Close(fd)
		}
	}
	for _, a := range attempts {
		fd, err := probeSocket(a)
		a.Errno = errnoOf(err)
		if err != nil {
			a.ErrMsg = err.Error()
		} else {
			held = append(held, fd)
		}
		rep.Attempts = append(rep.Attempts, a)
	}
	var udp, tcp atomic.Uint64
	var closers []io.Closer
	for _, fd := range held {
		f := os.NewFile(uintptr(fd), "held")
		typ, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if typ == unix.SOCK_DGRAM {
			pc, err := net.FilePacketConn(f)
			f.Close()
			if err != nil {
				continue
			}
			closers = append(closers, pc)
			go func() {
				buf := make([]byte, 65536)
				for {
					if _, _, err := pc.ReadFrom(buf); err != nil {
						return
					}
					udp.Add(1)
				}
			}()
			continue
		}
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			continue
		}
		closers = append(closers, ln)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				tcp.Add(1)
				c.Close()
			}
		}()
	}
	enc := json.NewEncoder(out)
	_ = enc.Encode(rep)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		_ = enc.Encode(hijackCounts{UDP: udp.Load(), TCP: tcp.Load()})
	}
	for _, c := range closers {
		c.Close()
	}
	return 0
}

// hijackProbeProc is a running probe as seen from the test.
type hijackProbeProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

var (
	probeBinOnce sync.Once
	probeBin     string
	probeBinErr  error
)

// startHijackProbe runs the probe as nobody. The test binary sits in a
// directory only root can enter, so it is copied into testkit.BinDir
// (world-readable).
func startHijackProbe(t *testing.T, attempts []hijackAttempt) (*hijackProbeProc, hijackReport) {
	t.Helper()
	dir := testkit.BinDir(t)
	probeBinOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			probeBinErr = err
			return
		}
		b, err := os.ReadFile(self)
		if err != nil {
			probeBinErr = err
			return
		}
		probeBin = filepath.Join(dir, "hijack-probe")
		probeBinErr = os.WriteFile(probeBin, b, 0o755)
	})
	if probeBinErr != nil {
		t.Fatal(probeBinErr)
	}
	spec, _ := json.Marshal(attempts)
	p := &hijackProbeProc{cmd: exec.Command(probeBin)}
	p.cmd.Env = append(os.Environ(), hijackProbeEnv+"=1", "SHARDD_HIJACK_SPEC="+string(spec))
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	p.cmd.Stderr = os.Stderr
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.in.Close()
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill() // only the probe this test started
			<-done
		}
	})
	p.out = bufio.NewScanner(stdout)
	p.out.Buffer(make([]byte, 1<<20), 1<<20)
	var rep hijackReport
	if !p.out.Scan() {
		t.Fatalf("the probe printed no report: %v", p.out.Err())
	}
	if err := json.Unmarshal(p.out.Bytes(), &rep); err != nil {
		t.Fatalf("probe report %q: %v", p.out.Bytes(), err)
	}
	return p, rep
}

// counts asks the probe what its sockets took so far.
func (p *hijackProbeProc) counts(t *testing.T) hijackCounts {
	t.Helper()
	if _, err := io.WriteString(p.in, "count\n"); err != nil {
		t.Fatal(err)
	}
	if !p.out.Scan() {
		t.Fatalf("the probe did not answer: %v", p.out.Err())
	}
	var c hijackCounts
	if err := json.Unmarshal(p.out.Bytes(), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// hijackAttempts lists every option combination against each address, for
// both transports.
func hijackAttempts(port uint16, addrs ...string) []hijackAttempt {
	var out []hijackAttempt
	for _, proto := range []string{"udp", "tcp"} {
		for _, a := range addrs {
			for _, opts := range [][]string{{"reuseaddr"}, {"reuseport"}, {"reuseaddr", "reuseport"}, {"reuseaddr", "reuseport", "bindtodevice"}} {
				out = append(out, hijackAttempt{Proto: proto, Addr: netip.AddrPortFrom(netip.MustParseAddr(a), port).String(), Opts: opts})
			}
		}
	}
	return out
}

// TestAttackHijack runs a process of another user (nobody) that tries to
// bind shardd's port with SO_REUSEADDR, SO_REUSEPORT and both (and bound to
// the loopback device), on the same and on more specific addresses, UDP and
// TCP. Every bind must be refused, and every datagram and connection sent
// afterwards must reach shardd.
func TestAttackHijack(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
			t.Fatal("the hijack attack runs a probe as another user, which needs root, and SHARDD_REQUIRE_TOOLS=1")
		}
		t.Skip("the hijack attack runs a probe as another user, which needs root")
	}
	for _, tc := range []struct {
		name      string
		args      []string
		addr      string   // shardd's ADDR (port 0: the kernel picks)
		attackers []string // the addresses the probe binds, on shardd's port
		targets   []string // where the traffic goes
		activated bool     // shard 0's UDP socket comes from "systemd", SO_REUSEADDR on
	}{
		{name: "wildcard dual-stack", addr: ":0",
			attackers: []string{"127.0.0.1", "::1", "0.0.0.0", "::"}, targets: []string{"127.0.0.1", "::1"}},
		{name: "wildcard dual-stack exclusive steer random", addr: ":0", args: []string{"--exclusive", "--steer", "random"},
			attackers: []string{"127.0.0.1", "::1", "0.0.0.0", "::"}, targets: []string{"127.0.0.1", "::1"}},
		{name: "IPv4 wildcard", addr: "0.0.0.0:0",
			attackers: []string{"127.0.0.1", "0.0.0.0", "::"}, targets: []string{"127.0.0.1"}},
		{name: "IPv6 wildcard", addr: "[::]:0",
			attackers: []string{"::1", "::"}, targets: []string{"::1"}},
		{name: "loopback", addr: "127.0.0.1:0",
			attackers: []string{"127.0.0.1", "0.0.0.0", "::"}, targets: []string{"127.0.0.1"}},
		{name: "loopback exclusive steer random", addr: "127.0.0.1:0", args: []string{"--exclusive", "--steer", "random"},
			attackers: []string{"127.0.0.1", "0.0.0.0", "::"}, targets: []string{"127.0.0.1"}},
		// Every shard's socket inherited (one shard here), as after an
		// upgrade from a build that set SO_REUSEADDR or under systemd: no
		// socket of shardd's own binding protects the port.
		{name: "loopback socket-activated with SO_REUSEADDR", addr: "127.0.0.1", activated: true, args: []string{"--shards", "1"},
			attackers: []string{"127.0.0.1", "0.0.0.0"}, targets: []string{"127.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--handler", "discard", "--proto", "udp,tcp", "--shards", "2", "--rcvbuf", "4M",
				"--guard-interval", "100ms", "--metrics", "127.0.0.1:0"}, tc.args...)
			var d *daemon
			if tc.activated {
				d = startActivatedDaemon(t, append(args, "--log-format", "json"), tc.addr)
			} else {
				d = startDaemon(t, append(args, tc.addr)...)
			}
			bound := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string))
			url := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
			port := bound.Port()

			p, rep := startHijackProbe(t, hijackAttempts(port, tc.attackers...))
			// The probe must prove it ran as the other user and could bind.
			if rep.UID != 65534 || rep.EUID != 65534 {
				t.Fatalf("the probe ran as uid %d (euid %d), not nobody", rep.UID, rep.EUID)
			}
			for _, c := range rep.Controls {
				if c.Errno != 0 {
					t.Fatalf("control bind %v failed (%s): the probe cannot bind at all", c, c.ErrMsg)
				}
			}
			refused := 0
			for _, a := range rep.Attempts {
				if a.Errno == int(unix.EADDRINUSE) {
					refused++
					continue
				}
				t.Errorf("nobody's bind %v: %s (errno %d), want address already in use", a, a.ErrMsg, a.Errno)
			}
			t.Logf("attack: %s: nobody (uid %d, %d control binds ok) tried %d binds on port %d: %d refused with EADDRINUSE",
				tc.name, rep.UID, len(rep.Controls), len(rep.Attempts), port, refused)

			// Traffic after the attempts: all of it must reach shardd.
			const perTarget, chunk, conns = 2000, 200, 10
			sent := 0
			var stolen hijackCounts
			for _, target := range tc.targets {
				to := netip.AddrPortFrom(netip.MustParseAddr(target), port)
				c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < perTarget; i += chunk {
					for j := 0; j < chunk; j++ {
						if _, err := c.Write([]byte("hijack?")); err != nil {
							t.Fatal(err)
						}
					}
					sent += chunk
					// Wait until every datagram is somewhere: shardd, its
					// kernel drops, or the probe.
					deadline := time.Now().Add(30 * time.Second)
					for {
						text := testkit.Scrape(t, url)
						stolen = p.counts(t)
						got := testkit.MetricSum(text, "shardd_rx_packets_total", `proto="udp"`) + testkit.MetricSum(text, "shardd_kernel_drops_total", `proto="udp"`)
						if int(got)+int(stolen.UDP) >= sent {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("%d datagrams sent, %v seen by shardd (rx + kernel drops), %d by the probe", sent, got, stolen.UDP)
						}
						time.Sleep(10 * time.Millisecond)
					}
				}
				c.Close()
				for i := 0; i < conns; i++ {
					conn, err := net.DialTimeout("tcp", to.String(), testkit.WaitTimeout)
					if err != nil {
						t.Fatal(err)
					}
					conn.Close()
				}
			}
			wantConns := float64(conns * len(tc.targets))
			var text string
			deadline := time.Now().Add(30 * time.Second)
			for {
				text = testkit.Scrape(t, url)
				stolen = p.counts(t)
				if testkit.MetricSum(text, "shardd_tcp_accepted_total", "")+float64(stolen.TCP) >= wantConns || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			rx := testkit.MetricSum(text, "shardd_rx_packets_total", `proto="udp"`)
			drops := testkit.MetricSum(text, "shardd_kernel_drops_total", `proto="udp"`)
			accepted := testkit.MetricSum(text, "shardd_tcp_accepted_total", "")
			foreign := testkit.MetricSum(text, "shardd_foreign_sockets", "")
			warnings := strings.Count(d.Stderr.String(), "a socket that is not shardd's can take this listener's traffic")
			t.Logf("attack: %s: %d datagrams sent after the attempts, shardd received %v (kernel drops %v), the attacker %d; %v connections, shardd accepted %v, the attacker %d; guard: shardd_foreign_sockets %v, %d warnings",
				tc.name, sent, rx, drops, stolen.UDP, wantConns, accepted, stolen.TCP, foreign, warnings)
			if stolen.UDP != 0 || stolen.TCP != 0 {
				t.Errorf("the attacker took %d datagrams and %d connections", stolen.UDP, stolen.TCP)
			}
			if int(rx) != sent || drops != 0 {
				t.Errorf("shardd received %v of %d datagrams (kernel drops %v)", rx, sent, drops)
			}
			if accepted != wantConns {
				t.Errorf("shardd accepted %v of %v connections", accepted, wantConns)
			}
			if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
				t.Fatalf("exit %d:\n%s", code, d.Stderr)
			}
		})
	}
}

// startActivatedDaemon starts shardd as systemd would with a socket unit:
// the UDP and TCP sockets for host (port picked here) are bound by the
// "manager" with SO_REUSEADDR and SO_REUSEPORT, as systemd binds them, and
// passed with LISTEN_FDS.
func startActivatedDaemon(t *testing.T, args []string, host string) *daemon {
	return startActivatedDaemonAs(t, nil, args, host)
}

// startActivatedDaemonAs is startActivatedDaemon with shardd run as cred
// (the sockets stay the test's, as systemd's stay root's).
func startActivatedDaemonAs(t *testing.T, cred *syscall.Credential, args []string, host string) *daemon {
	t.Helper()
	files, port := testkit.ActivationSockets(t, netip.MustParseAddr(host))
	cmd := exec.Command("sh", append([]string{"-c", `LISTEN_PID=$$ LISTEN_FDS=2 exec "$0" "$@"`, sharddBin(t)}, append(args, fmt.Sprintf("%s:%d", host, port))...)...)
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	d := testkit.Start(t, "shardd", cmd)
	for _, f := range cmd.ExtraFiles {
		f.Close() // the daemon has them now
	}
	return d
}

// TestActivatedSocketsOfAnotherUser: systemd binds as root and the sample
// unit runs shardd as a dynamic user. Shards beyond the passed sockets
// cannot join root's sockets on the port (UDP relied on SO_REUSEADDR for
// that, which is the hijack), so shardd says so in one line before binding;
// with --shards equal to the sockets passed it serves.
func TestActivatedSocketsOfAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("runs shardd as another user, which needs root")
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	args := []string{"--log-format", "json", "--proto", "udp,tcp", "--metrics", "127.0.0.1:0"}
	d := startActivatedDaemonAs(t, nobody, append(args, "--shards", "2"), "127.0.0.1")
	select {
	case <-d.Exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("shardd did not exit:\n%s", d.Stderr)
	}
	if d.Code != exitRuntime {
		t.Errorf("exit %d, want %d", d.Code, exitRuntime)
	}
	assertOneLine(t, d.Stderr.String(), "(shard 1)", "belong to uid 0", "this process (uid 65534)", "use --shards 1")

	d = startActivatedDaemonAs(t, nobody, append(args, "--shards", "1"), "127.0.0.1")
	d.WaitLine(t, "turned SO_REUSEADDR off on inherited UDP sockets: with it a process of any user could bind the port and take its datagrams")
	bound := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string))
	if got, _ := testkit.Exchange(t, "udp4", bound, []byte("activated")); string(got) != "activated" {
		t.Fatalf("UDP: %q", got)
	}
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr)
	}
}

// TestSeveralAddrsOnOnePort: one process may serve overlapping ADDRs on one
// port (0.0.0.0:P beside [::]:P or :P, 127.0.0.1:P beside :P), UDP and TCP.
// Before issue 12 this leaned on SO_REUSEADDR; SO_REUSEPORT and one uid
// are what allow it now. The more specific listener gets its address's
// traffic.
func TestSeveralAddrsOnOnePort(t *testing.T) {
	for _, tc := range []struct {
		addrs    []string // shardd's ADDRs, %d the port
		to       string   // where a datagram and a connection go
		listener string   // the ADDR that must get them
	}{
		{[]string{"0.0.0.0:%d", "[::]:%d"}, "127.0.0.1", "0.0.0.0:%d"},
		{[]string{"0.0.0.0:%d", "[::]:%d"}, "::1", "[::]:%d"},
		{[]string{"127.0.0.1:%d", ":%d"}, "127.0.0.1", "127.0.0.1:%d"},
		{[]string{"127.0.0.1:%d", ":%d"}, "::1", ":%d"},
		{[]string{":%d", "0.0.0.0:%d"}, "127.0.0.1", "0.0.0.0:%d"},
	} {
		t.Run(strings.ReplaceAll(strings.Join(tc.addrs, " "), "%d", "P")+" to "+tc.to, func(t *testing.T) {
			p, err := ports.BelowEphemeral("", true) // free for UDP and TCP on every address
			if err != nil {
				t.Skip(err)
			}
			port := uint16(p)
			args := []string{"--proto", "udp,tcp", "--shards", "2", "--metrics", "127.0.0.1:0"}
			for _, a := range tc.addrs {
				args = append(args, fmt.Sprintf(a, port))
			}
			d := startDaemon(t, args...)
			for range tc.addrs {
				d.WaitLine(t, "listening")
			}
			url := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
			to := netip.AddrPortFrom(netip.MustParseAddr(tc.to), port)
			if got, _ := testkit.Exchange(t, "udp", to, []byte("several")); string(got) != "several" {
				t.Fatalf("UDP reply %q", got)
			}
			c, err := net.DialTimeout("tcp", to.String(), testkit.WaitTimeout)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Write([]byte("several"))
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 7)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "several" {
				t.Fatalf("TCP reply %q: %v", buf, err)
			}
			c.Close()
			text := testkit.Scrape(t, url)
			want := fmt.Sprintf(`listener="`+tc.listener+`"`, port)
			if got := testkit.MetricSum(text, "shardd_rx_packets_total", want); got < 2 {
				t.Errorf("%s received %v messages (UDP + TCP), want both\n%s", want, got, text)
			}
			if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
				t.Fatalf("exit %d:\n%s", code, d.Stderr)
			}
		})
	}
}
