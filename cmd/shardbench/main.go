// Command shardbench runs the side-by-side benchmark behind `make bench`:
// the naive Go server, shardd with 1 shard, one shard per CPU, and one per
// CPU pinned (plus any peer server given with --peer), under shardload's
// one-way (discard) and echo loads, 64- and 512-byte datagrams, repetitions
// interleaved so that a noisy machine slows every server alike. It writes a
// markdown table, a JSON file and an SVG chart into --out.
//
//	shardbench [--out DIR] [--reps N] [--duration D] [--peer 'NAME=COMMAND {port}']...
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shardd/shardd/cmd/internal/ports"

	"github.com/shardd/shardd/shard/sockinfo"
)

// server is one contender: how to start it on a port for a handler.
type server struct {
	Name     string
	Baseline bool
	TCPOnly  bool                                           // a TCP variant: skipped in UDP loads
	UDPOnly  bool                                           // a UDP variant: skipped in TCP loads
	command  func(port int, handler, proto string) []string // argv
	shell    string                                         // a peer's shell command, {port} and {handler} substituted
}

// runs tells whether the server variant takes part in a load.
func (s server) runs(sc scenario) bool {
	tcp := sc.Mode == "tcp-echo"
	return !(s.TCPOnly && !tcp) && !(s.UDPOnly && tcp)
}

// scenario is one load: mode and datagram size.
type scenario struct {
	Mode string // discard (shardload oneway) or echo
	Size int
}

func (s scenario) String() string { return fmt.Sprintf("%s %dB", s.Mode, s.Size) }

// sample is one measured run.
type sample struct {
	Server   string  `json:"server"`
	Scenario string  `json:"scenario"`
	Rep      int     `json:"rep"`
	Rate     float64 `json:"rate"` // datagrams received/s (discard) or round trips/s (echo)
	Drops    uint64  `json:"drops"`
	Sent     uint64  `json:"sent"`
	Offered  float64 `json:"offered"` // datagrams/s the kernel took from shardload
	P50      int64   `json:"rtt_p50_ns,omitempty"`
	P99      int64   `json:"rtt_p99_ns,omitempty"`
	P999     int64   `json:"rtt_p999_ns,omitempty"`
}

type peerFlag []string

func (p *peerFlag) String() string     { return strings.Join(*p, ",") }
func (p *peerFlag) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "shardbench:", err)
		var ue *usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

func run(args []string) error {
	fs := flag.NewFlagSet("shardbench", flag.ContinueOnError)
	out := fs.String("out", "out/bench", "directory for results.md, results.json and chart.svg")
	reps := fs.Int("reps", 3, "repetitions of every run, interleaved")
	dur := fs.Duration("duration", 2*time.Second, "load time per run")
	bin := fs.String("bin", "bin", "directory holding shardd, shardload and naive (make build)")
	sizes := fs.String("sizes", "64,512", "datagram sizes")
	modes := fs.String("modes", "discard,echo,tcp-echo,upgrade,dns,syslog", "loads: discard (UDP one-way), echo (UDP), tcp-echo, upgrade (10 upgrades under a steady stream), dns (shardd --handler dns vs Knot DNS, dnsperf; see dns.go), syslog (highest zero-loss rate into a file, shardd --handler syslog vs rsyslogd; see syslog.go)")
	dnsCfg := addDNSFlags(fs)
	syslogCfg := addSyslogFlags(fs)
	var peers peerFlag
	fs.Var(&peers, "peer", "another server: 'NAME=SHELL COMMAND' with {port} (and optionally {handler}: echo or discard, {proto}: udp or tcp); repeatable")
	if err := fs.Parse(args); err != nil {
		return &usageError{err}
	}
	if *reps < 1 || *dur <= 0 {
		return &usageError{errors.New("--reps and --duration must be positive")}
	}
	for _, b := range []string{"shardd", "shardload", "naive"} {
		if _, err := os.Stat(filepath.Join(*bin, b)); err != nil {
			return fmt.Errorf("%s: %w (run make build first)", filepath.Join(*bin, b), err)
		}
	}
	abs := func(name string) string { p, _ := filepath.Abs(filepath.Join(*bin, name)); return p }
	ncpu := runtime.GOMAXPROCS(0)
	servers := []server{
		{Name: "naive", Baseline: true, command: func(port int, h, proto string) []string {
			return []string{abs("naive"), "--proto", proto, "--handler", h, fmt.Sprintf("127.0.0.1:%d", port)}
		}},
		{Name: "shardd 1 shard", command: func(port int, h, proto string) []string {
			return []string{abs("shardd"), "--proto", proto, "--shards", "1", "--handler", h, "--log-level", "warn", fmt.Sprintf("127.0.0.1:%d", port)}
		}},
		{Name: fmt.Sprintf("shardd %d shards", ncpu), command: func(port int, h, proto string) []string {
			return []string{abs("shardd"), "--proto", proto, "--handler", h, "--log-level", "warn", fmt.Sprintf("127.0.0.1:%d", port)}
		}},
		{Name: fmt.Sprintf("shardd %d shards --pin", ncpu), command: func(port int, h, proto string) []string {
			return []string{abs("shardd"), "--proto", proto, "--pin", "--handler", h, "--log-level", "warn", fmt.Sprintf("127.0.0.1:%d", port)}
		}},
		{Name: fmt.Sprintf("shardd %d shards --pin --steer cpu", ncpu), UDPOnly: true, command: func(port int, h, proto string) []string {
			return []string{abs("shardd"), "--proto", proto, "--pin", "--steer", "cpu", "--handler", h, "--log-level", "warn", fmt.Sprintf("127.0.0.1:%d", port)}
		}},
		{Name: fmt.Sprintf("shardd %d shards --tcp-shape goroutines", ncpu), TCPOnly: true, command: func(port int, h, proto string) []string {
			return []string{abs("shardd"), "--proto", proto, "--tcp-shape", "goroutines", "--handler", h, "--log-level", "warn", fmt.Sprintf("127.0.0.1:%d", port)}
		}},
	}
	for _, p := range peers {
		name, cmd, ok := strings.Cut(p, "=")
		if !ok || name == "" || !strings.Contains(cmd, "{port}") {
			return &usageError{fmt.Errorf("--peer %q: want NAME=COMMAND with {port} in the command", p)}
		}
		servers = append(servers, server{Name: name, shell: cmd})
	}
	var scenarios []scenario
	withUpgrade, withDNS, withSyslog := false, false, false
	for _, m := range strings.Split(*modes, ",") {
		if m == "upgrade" {
			withUpgrade = true
			continue
		}
		if m == "dns" {
			withDNS = true
			continue
		}
		if m == "syslog" {
			withSyslog = true
			continue
		}
		if m != "discard" && m != "echo" && m != "tcp-echo" {
			return &usageError{fmt.Errorf("--modes: unknown mode %q", m)}
		}
		for _, s := range strings.Split(*sizes, ",") {
			n, err := strconv.Atoi(s)
			if err != nil || n < 16 || n > 65507 {
				return &usageError{fmt.Errorf("--sizes: %q is not a size from 16 to 65507", s)}
			}
			scenarios = append(scenarios, scenario{m, n})
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}

	start := time.Now()
	var samples []sample
	total := 0
	for _, sc := range scenarios {
		for _, srv := range servers {
			if srv.runs(sc) {
				total += *reps
			}
		}
	}
	done := 0
	for rep := 1; rep <= *reps; rep++ {
		for _, sc := range scenarios {
			// Rotate the order each repetition: no server always runs first.
			for i := range servers {
				srv := servers[(i+rep)%len(servers)]
				if !srv.runs(sc) {
					continue
				}
				s, err := measure(srv, sc, *dur, abs("shardload"))
				done++
				if err != nil {
					return fmt.Errorf("%s, %s, rep %d: %w", srv.Name, sc, rep, err)
				}
				s.Rep = rep
				samples = append(samples, s)
				fmt.Fprintf(os.Stderr, "[%3d/%d] %-22s %-12s %12.0f/s  drops %d\n", done, total, srv.Name, sc, s.Rate, s.Drops)
			}
		}
	}
	rep := buildReport(servers, scenarios, samples, *reps, *dur, time.Since(start))
	md := ""
	if len(scenarios) > 0 {
		md = rep.markdown()
	}
	var upg *upgradeResult
	if withUpgrade {
		u, err := measureUpgrade(abs("shardd"), abs("shardload"), 10, 20000, 3*(*dur))
		if err != nil {
			return fmt.Errorf("upgrade under load: %w", err)
		}
		upg = &u
		md += u.markdown()
		fmt.Fprintf(os.Stderr, "upgrade under load: sent %d, received %d, drops %d\n", u.Sent, u.Received, u.KernelDrops)
	}
	var dnsRes *dnsResult
	if withDNS {
		d, err := runDNSMode(fs, dnsCfg, abs("shardd"), abs("shardload"), *reps, *dur)
		if err != nil {
			return fmt.Errorf("dns: %w", err)
		}
		dnsRes = d
		md += d.markdown()
	}
	var syslogRes *syslogResult
	if withSyslog {
		r, err := runSyslogMode(syslogCfg, abs("shardd"), abs("shardload"))
		if err != nil {
			return fmt.Errorf("syslog: %w", err)
		}
		syslogRes = r
		md += r.markdown()
	}
	if err := os.WriteFile(filepath.Join(*out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(struct {
		Machine machineInfo    `json:"machine"`
		Samples []sample       `json:"samples"`
		Upgrade *upgradeResult `json:"upgrade,omitempty"`
		DNS     *dnsResult     `json:"dns,omitempty"`
		Syslog  *syslogResult  `json:"syslog,omitempty"`
	}{rep.machine, samples, upg, dnsRes, syslogRes}, "", "  ")
	if err := os.WriteFile(filepath.Join(*out, "results.json"), js, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "chart.svg"), []byte(rep.svg()), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	fmt.Fprintf(os.Stderr, "wrote %s/results.md, results.json, chart.svg\n", *out)
	return nil
}

// measure starts srv on a free port, runs one shardload, and stops srv.
func measure(srv server, sc scenario, dur time.Duration, shardload string) (sample, error) {
	s := sample{Server: srv.Name, Scenario: sc.String()}
	port, err := freePort()
	if err != nil {
		return s, err
	}
	handler, proto := "discard", "udp"
	if sc.Mode != "discard" {
		handler = "echo"
	}
	if sc.Mode == "tcp-echo" {
		proto = "tcp"
	}
	var cmd *exec.Cmd
	if srv.shell != "" {
		line := strings.NewReplacer("{port}", strconv.Itoa(port), "{handler}", handler, "{proto}", proto).Replace(srv.shell)
		cmd = exec.Command("sh", "-c", "exec "+line)
	} else {
		argv := srv.command(port, handler, proto)
		cmd = exec.Command(argv[0], argv[1:]...)
	}
	var serr lockedBuf // read while the server may still write
	cmd.Stderr = &serr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so a peer's children stop with it
	if err := cmd.Start(); err != nil {
		return s, err
	}
	defer stopServer(cmd)
	if err := waitBound(proto, port, 5*time.Second); err != nil {
		return s, fmt.Errorf("server did not bind 127.0.0.1:%d: %v; stderr: %s", port, err, serr.String())
	}

	args := []string{"--json", "--progress=false", "--duration", dur.String(), "--size", strconv.Itoa(sc.Size), "--proto", proto}
	if sc.Mode == "echo" {
		// A closed loop: one sender thread, the rest of the machine answers.
		args = append(args, "--mode", "echo", "--senders", "1")
	} else if sc.Mode == "tcp-echo" {
		// Request, reply, request: every message is a read and a write on
		// the server, over 256 connections.
		args = append(args, "--mode", "echo", "--senders", "1", "--flows", "256", "--window", "1")
	} else {
		// One sender per CPU, to offer more than any server here can take:
		// what a server receives is then its capacity, with drops counted.
		args = append(args, "--wait", "0s")
	}
	args = append(args, fmt.Sprintf("127.0.0.1:%d", port))
	var sum struct {
		Sent        uint64   `json:"sent"`
		DurationSec float64  `json:"duration_s"`
		RecvPerSec  *float64 `json:"received_per_s"`
		RTT         *struct {
			P50, P99, P999 int64
		} `json:"rtt_ns"`
	}
	if err := runShardload(shardload, dur, args, &sum); err != nil {
		return s, err
	}
	s.Sent = sum.Sent
	s.Offered = float64(sum.Sent) / sum.DurationSec
	// Let the server read what is still queued, then read the drop counters
	// of the sockets on its port: the same source for every server.
	var sock portSockets
	if proto == "udp" {
		if sock, err = waitDrained(port, 3*time.Second); err != nil {
			return s, err
		}
	}
	s.Drops = sock.drops
	if sc.Mode != "discard" {
		if sum.RecvPerSec == nil || sum.RTT == nil {
			return s, errors.New("echo run without replies")
		}
		s.Rate = *sum.RecvPerSec
		s.P50, s.P99, s.P999 = sum.RTT.P50, sum.RTT.P99, sum.RTT.P999
		return s, nil
	}
	// One-way: every datagram the kernel took from shardload either reached
	// the server's sockets and was read, or was dropped there and counted.
	s.Rate = float64(sum.Sent-min(sock.drops, sum.Sent)) / sum.DurationSec
	return s, nil
}

// portSockets sums what /proc/net/udp and udp6 say of the sockets bound to a port.
type portSockets struct {
	n      int
	queued uint64 // bytes waiting in receive queues
	drops  uint64
}

// runShardload runs the load tool with --json (args include it) for about
// dur and decodes its summary into sum.
func runShardload(shardload string, dur time.Duration, args []string, sum any) error {
	ctx, cancel := context.WithTimeout(context.Background(), dur+30*time.Second)
	defer cancel()
	load := exec.CommandContext(ctx, shardload, args...)
	var lerr bytes.Buffer
	load.Stderr = &lerr
	out, err := load.Output()
	if err != nil {
		return fmt.Errorf("shardload: %v: %s", err, lerr.String())
	}
	if err := json.Unmarshal(out, sum); err != nil {
		return fmt.Errorf("shardload output: %v", err)
	}
	return nil
}

func readPort(port int) (portSockets, error) { return readProcPort("udp", port) }

// readProcPort reads /proc/net/PROTO and PROTO6; for tcp only listeners count.
func readProcPort(proto string, port int) (portSockets, error) {
	var ps portSockets
	socks, _, err := sockinfo.Scan(proto, uint16(port)) // notes: a missing IPv6 table
	if err != nil {
		return ps, err
	}
	for _, s := range socks {
		if proto == "tcp" && s.State != "LISTEN" {
			continue
		}
		ps.n++
		ps.queued += s.RxQueue
		ps.drops += s.Drops
	}
	return ps, nil
}

// waitDrained waits until the server has read everything queued on its port.
func waitDrained(port int, limit time.Duration) (portSockets, error) {
	deadline := time.Now().Add(limit)
	for {
		ps, err := readPort(port)
		if err != nil || (ps.n > 0 && ps.queued == 0) || time.Now().After(deadline) {
			return ps, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stopServer(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // the group we started
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// waitBound polls /proc/net/udp until some socket is bound to port.
func waitBound(proto string, port int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		ps, err := readProcPort(proto, port)
		if err != nil {
			return err
		}
		if ps.n > 0 {
			time.Sleep(50 * time.Millisecond) // every shard binds within microseconds of the first
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New("timed out")
}

// freePort finds a port free for both UDP and TCP on 127.0.0.1 (the TCP
// side can be held by a client connection of an earlier run) for a server
// that binds it itself, below the ephemeral range (see ports.BelowEphemeral).
func freePort() (int, error) { return ports.BelowEphemeral("127.0.0.1", true) }
