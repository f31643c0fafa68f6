// Command shardbench runs the side-by-side benchmark behind `make bench`:
// the naive Go server, shardd with 1 shard, one shard per CPU, and one per
// CPU pinned (plus any peer server given with --peer), under shardload's
// one-way (discard) and echo loads, 64- and 512-byte datagrams, repetitions
// interleaved so that a noisy machine slows every server alike; and shardd
// with UDP GRO and GSO on against off (offload.go). It writes a
// markdown table, a JSON file and SVG charts into --out.
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
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shardd/shardd/cmd/internal/cli"
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
	only     string                                         // if set, the one mode (discard, echo) it takes part in
}

// runs tells whether the server variant takes part in a load.
func (s server) runs(sc scenario) bool {
	tcp := sc.Mode == "tcp-echo"
	if s.only != "" && s.only != sc.Mode {
		return false
	}
	return !(s.TCPOnly && !tcp) && !(s.UDPOnly && tcp)
}

// scenario is one load: mode and datagram size.
type scenario struct {
	Mode string // discard (shardload oneway) or echo
	Size int
	GSO  bool // shardload --gso on (the offload mode)
}

func (s scenario) String() string {
	if s.GSO {
		return fmt.Sprintf("%s %dB, GSO sender", s.Mode, s.Size)
	}
	return fmt.Sprintf("%s %dB", s.Mode, s.Size)
}

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

// stdout is where --help goes.
var stdout io.Writer = os.Stdout

// errHelp ends a run after --help: exit 0.
var errHelp = errors.New("help printed")

func main() {
	os.Exit(exitCode(run(os.Args[1:]), os.Stderr))
}

// exitCode reports err of a run on stderr and returns the exit code: 0
// done (or --help), 1 runtime failure, 2 usage error.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "shardbench:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

type usageError struct{ error }

func (e *usageError) Unwrap() error { return e.error }

// run is the whole tool: flags, the loads asked for, the contenders, then
// the UDP/TCP rounds, the other modes, and the results written out.
func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	for _, b := range []string{"shardd", "shardload", "naive"} {
		if _, err := os.Stat(filepath.Join(o.bin, b)); err != nil {
			return fmt.Errorf("%s: %w (run make build first)", filepath.Join(o.bin, b), err)
		}
	}
	servers, err := contenders(o.binPath, o.peers)
	if err != nil {
		return err
	}
	p, err := parsePlan(o.modes, o.sizes)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if err := checkOut(o.out); err != nil {
		return err
	}

	o.prog = planSuite(o, p, servers)
	start := time.Now()
	samples, err := runScenarios(servers, p.scenarios, o.reps, o.dur, o.binPath("shardload"), o.prog)
	if err != nil {
		return err
	}
	rep := buildReport(servers, p.scenarios, samples, o.reps, o.dur, time.Since(start))
	md := ""
	if len(p.scenarios) > 0 {
		md = rep.markdown()
	}
	res := results{Machine: rep.machine, Samples: samples}
	more, err := runOtherModes(o, p, &res)
	if err != nil {
		return err
	}
	return writeResults(o.out, md+more, res, charts(rep, res))
}

// charts are the SVG charts of the modes that ran, by file name: chart.svg
// for the UDP and TCP loads, chart-dns.svg, chart-syslog.svg and
// chart-offload.svg.
func charts(rep *report, res results) map[string]string {
	c := map[string]string{}
	if len(rep.scenarios) > 0 {
		c["chart.svg"] = rep.svg()
	}
	if res.DNS != nil && res.DNS.Skipped == "" {
		c["chart-dns.svg"] = res.DNS.svg()
	}
	if res.Syslog != nil {
		c["chart-syslog.svg"] = res.Syslog.svg()
	}
	if res.Offload != nil {
		c["chart-offload.svg"] = res.Offload.rep.svg()
	}
	return c
}

// options are shardbench's flags.
type options struct {
	fs     *flag.FlagSet
	out    string
	reps   int
	dur    time.Duration
	bin    string
	sizes  string
	modes  string
	dns    *dnsConfig
	dot    *dotConfig
	syslog *syslogConfig
	peers  peerFlag
	prog   *progress
	queues []int // xdp mode: veth queue layouts (--xdp-queues)
}

// parseFlags reads and checks the flags; a usageError on bad ones.
func parseFlags(args []string) (*options, error) {
	o := &options{fs: flag.NewFlagSet("shardbench", flag.ContinueOnError)}
	fs := o.fs
	fs.StringVar(&o.out, "out", "out/bench", "directory for results.md, results.json and the charts (chart.svg, chart-dns.svg, chart-syslog.svg, chart-offload.svg)")
	fs.IntVar(&o.reps, "reps", 3, "repetitions of every run, interleaved")
	fs.DurationVar(&o.dur, "duration", 2*time.Second, "load time per run")
	fs.StringVar(&o.bin, "bin", "bin", "directory holding shardd, shardload and naive (make build)")
	fs.StringVar(&o.sizes, "sizes", "64,512", "datagram sizes, comma-separated (bytes, or with K: 1K)")
	fs.StringVar(&o.modes, "modes", "discard,echo,tcp-echo,upgrade,dns,dot,syslog,offload", "loads: discard (UDP one-way), echo (UDP), tcp-echo, upgrade (10 upgrades under a steady stream), dns (shardd --handler dns vs Knot DNS, dnsperf; see dns.go), dot (DNS over TLS, shardd --tls vs NSD: dnsperf -m dot queries/s and new connections/s with and without resumption; see dot.go), syslog (highest zero-loss rate into a file, shardd --handler syslog vs rsyslogd; see syslog.go), offload (shardd --gro on vs off under a GSO sender, discard and zero-loss syslog into a file; --gso on vs off under GSO echo; see offload.go); also, by name only (root, ip, dnsperf): xdp (shardd --xdp vs its UDP sockets vs Knot DNS XDP, and the discard drain, over a veth pair between two namespaces it creates; see xdp.go)")
	xdpQueues := fs.String("xdp-queues", "1,2", "xdp: receive queues per end of the veth pair, one layout per value, comma-separated (1 is veth's default; 2 gives each of shardd's 2 shards its own queue)")
	o.dns = addDNSFlags(fs)
	o.dot = addDoTFlags(fs)
	o.syslog = addSyslogFlags(fs)
	fs.Var(&o.peers, "peer", "another server: 'NAME=SHELL COMMAND' with {port} (and optionally {handler}: echo or discard, {proto}: udp or tcp); repeatable")
	quick := fs.Bool("quick", false, "a quick look at every mode (a minute or two on 2 CPUs): "+quickLookText()+", unless given too")
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, "Usage: shardbench [flags]\n\nRuns shardd, the naive server and any --peer side by side under the same loads\nand writes results.md, results.json and the charts (chart.svg, chart-dns.svg,\nchart-syslog.svg, chart-offload.svg) into --out.\nExit codes: 0 done, 1 runtime failure, 2 usage error.\n\nFlags:")
		cli.PrintFlags(stdout, fs)
		return nil, errHelp
	}
	if err != nil {
		return nil, &usageError{errors.New(cli.FlagError(fs, err, "shardbench"))}
	}
	if fs.NArg() > 0 {
		return nil, &usageError{fmt.Errorf("unexpected %q: shardbench takes flags only (see shardbench --help)", fs.Arg(0))}
	}
	if *quick {
		setQuickLook(fs)
	}
	if o.reps < 1 || o.dur <= 0 {
		return nil, &usageError{errors.New("--reps and --duration must be positive")}
	}
	if o.queues, err = parseQueues(*xdpQueues); err != nil {
		return nil, &usageError{err}
	}
	return o, nil
}

// quickLook are the flags --quick shortens, with their values: one
// repetition and short runs in every mode, one syslog search round.
var quickLook = [][2]string{{"reps", "1"}, {"duration", "1s"}, {"dns-zero-duration", "1s"},
	{"syslog-duration", "1s"}, {"syslog-rounds", "1"}, {"syslog-steps", "1"}}

func quickLookText() string {
	var s []string
	for _, f := range quickLook {
		s = append(s, "--"+f[0]+" "+f[1])
	}
	return strings.Join(s, " ")
}

// setQuickLook gives the quickLook values to the flags not set on the
// command line (those keep their value, before or after --quick).
func setQuickLook(fs *flag.FlagSet) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, f := range quickLook {
		if !given[f[0]] {
			_ = fs.Set(f[0], f[1]) // known flags, valid values (TestQuickLook)
		}
	}
}

// binPath is the absolute path of a binary in --bin.
func (o *options) binPath(name string) string {
	p, _ := filepath.Abs(filepath.Join(o.bin, name))
	return p
}

// contenders are the servers of the UDP and TCP loads: the naive baseline,
// shardd's variants, and the --peer servers.
func contenders(bin func(string) string, peers []string) ([]server, error) {
	ncpu := runtime.GOMAXPROCS(0)
	shardd := func(name string, flags ...string) server {
		return server{Name: name, command: func(port int, h, proto string) []string {
			argv := append([]string{bin("shardd"), "--proto", proto}, flags...)
			return append(argv, "--handler", h, "--log-level", "warn", fmt.Sprintf("127.0.0.1:%d", port))
		}}
	}
	steer := shardd(fmt.Sprintf("shardd %d shards --pin --steer cpu", ncpu), "--pin", "--steer", "cpu")
	steer.UDPOnly = true
	goroutines := shardd(fmt.Sprintf("shardd %d shards --tcp-shape goroutines", ncpu), "--tcp-shape", "goroutines")
	goroutines.TCPOnly = true
	servers := []server{
		{Name: "naive", Baseline: true, command: func(port int, h, proto string) []string {
			return []string{bin("naive"), "--proto", proto, "--handler", h, fmt.Sprintf("127.0.0.1:%d", port)}
		}},
		shardd("shardd 1 shard", "--shards", "1"),
		shardd(fmt.Sprintf("shardd %d shards", ncpu)),
		shardd(fmt.Sprintf("shardd %d shards --pin", ncpu), "--pin"),
		steer,
		goroutines,
	}
	for _, p := range peers {
		name, cmd, ok := strings.Cut(p, "=")
		if !ok || name == "" || !strings.Contains(cmd, "{port}") {
			return nil, &usageError{fmt.Errorf("--peer %q: want NAME=COMMAND with {port} in the command", p)}
		}
		servers = append(servers, server{Name: name, shell: cmd})
	}
	return servers, nil
}

// plan is what --modes and --sizes ask for: the UDP/TCP loads, one per
// mode and size, and the modes of their own.
type plan struct {
	scenarios            []scenario
	offload              []scenario // the offload mode's loads, each with a GSO sender
	upgrade, dns, syslog bool
	dot                  bool
	xdp                  bool // the xdp mode (xdp.go); asked by name only
}

// parsePlan reads --modes and --sizes; a usageError on an unknown mode or
// a bad size.
func parsePlan(modes, sizes string) (plan, error) {
	var p plan
	for _, m := range strings.Split(modes, ",") {
		switch m {
		case "upgrade":
			p.upgrade = true
			continue
		case "dns":
			p.dns = true
			continue
		case "dot":
			p.dot = true
			continue
		case "syslog":
			p.syslog = true
			continue
		case "xdp":
			p.xdp = true
			continue
		case "discard", "echo", "tcp-echo", "offload":
		default:
			return p, &usageError{fmt.Errorf("--modes: unknown mode %q", m)}
		}
		ns, err := parseSizes(sizes)
		if err != nil {
			return p, err
		}
		for _, n := range ns {
			if m == "offload" {
				p.offload = append(p.offload, offloadScenarios(n)...)
				continue
			}
			p.scenarios = append(p.scenarios, scenario{Mode: m, Size: n})
		}
	}
	return p, nil
}

// parseSizes reads --sizes; a usageError on a bad size.
func parseSizes(sizes string) ([]int, error) {
	var ns []int
	for _, s := range strings.Split(sizes, ",") {
		n, err := cli.ParseSize(s, 1<<31-1)
		if err != nil || n < 16 || n > 65507 {
			return nil, &usageError{fmt.Errorf("--sizes: %q is not a size from 16 to 65507", s)}
		}
		ns = append(ns, int(n))
	}
	return ns, nil
}

// planSuite is the progress line of the suite, with every run the modes
// asked for planned.
func planSuite(o *options, p plan, servers []server) *progress {
	prog := newProgress(os.Stderr)
	runs := 0
	for _, sc := range p.scenarios {
		for _, srv := range servers {
			if srv.runs(sc) {
				runs += o.reps
			}
		}
	}
	prog.plan("load", runs+offloadRuns(p.offload, o.reps), o.dur)
	if p.upgrade {
		prog.plan("upgrade", 1, upgradeLoad(o.dur))
	}
	if p.dns {
		for _, r := range o.dns.planned(o.reps, o.dur) {
			prog.plan(r.kind, r.runs, r.load)
		}
	}
	if p.dot {
		for _, r := range dotPlanned(o.reps, o.dur) {
			prog.plan(r.kind, r.runs, r.load)
		}
	}
	if p.syslog {
		prog.plan("syslog", o.syslog.planned(o.syslog.servers()), o.syslog.dur)
	}
	if len(p.offload) > 0 {
		prog.plan("syslog", o.syslog.planned(len(offloadSyslogServers(""))), o.syslog.dur) // its syslog row
	}
	return prog
}

// plannedRuns is a number of runs of a kind loading for the same time.
type plannedRuns struct {
	kind string
	runs int
	load time.Duration
}

// runScenarios measures every server under every load, reps times,
// interleaved: each repetition runs every load once, and the order of the
// servers rotates, so no server always runs first.
func runScenarios(servers []server, scenarios []scenario, reps int, dur time.Duration, shardload string, prog *progress) ([]sample, error) {
	var samples []sample
	for rep := 1; rep <= reps; rep++ {
		for _, sc := range scenarios {
			for i := range servers {
				srv := servers[(i+rep)%len(servers)]
				if !srv.runs(sc) {
					continue
				}
				prog.start("load", fmt.Sprintf("%s %s rep %d/%d", sc, srv.Name, rep, reps), dur)
				s, err := measure(srv, sc, dur, shardload)
				if err != nil {
					prog.end("failed")
					return nil, fmt.Errorf("%s, %s, rep %d: %w", srv.Name, sc, rep, err)
				}
				s.Rep = rep
				samples = append(samples, s)
				prog.end("%.0f/s, drops %d", s.Rate, s.Drops)
			}
		}
	}
	return samples, nil
}

// results is results.json.
type results struct {
	Machine machineInfo    `json:"machine"`
	Samples []sample       `json:"samples"`
	Upgrade *upgradeResult `json:"upgrade,omitempty"`
	DNS     *dnsResult     `json:"dns,omitempty"`
	DoT     *dotResult     `json:"dot,omitempty"`
	Syslog  *syslogResult  `json:"syslog,omitempty"`
	Offload *offloadResult `json:"offload,omitempty"`
	XDP     []xdpRun       `json:"xdp,omitempty"`
}

// runOtherModes runs the modes with tables of their own (upgrade, dns,
// syslog) that the plan asks for, into res, and returns their markdown.
func runOtherModes(o *options, p plan, res *results) (string, error) {
	shardd, shardload := o.binPath("shardd"), o.binPath("shardload")
	md := ""
	if p.upgrade {
		o.prog.start("upgrade", "upgrade under load (10 upgrades)", upgradeLoad(o.dur))
		u, err := measureUpgrade(shardd, shardload, 10, 20000, upgradeLoad(o.dur))
		if err != nil {
			o.prog.end("failed")
			return "", fmt.Errorf("upgrade under load: %w", err)
		}
		res.Upgrade = &u
		md += u.markdown()
		o.prog.end("sent %d, received %d, drops %d", u.Sent, u.Received, u.KernelDrops)
	}
	if p.dns {
		d, err := runDNSMode(o.fs, o.dns, shardd, shardload, o.reps, o.dur, o.prog)
		if err != nil {
			return "", fmt.Errorf("dns: %w", err)
		}
		res.DNS = d
		md += d.markdown()
	}
	if p.dot {
		d, err := runDoTMode(o.fs, o.dot, o.dns, shardd, o.reps, o.dur, o.prog)
		if err != nil {
			return "", fmt.Errorf("dot: %w", err)
		}
		res.DoT = d
		md += d.markdown()
	}
	if len(p.offload) > 0 {
		r, err := runOffloadMode(o, p.offload)
		if err != nil {
			return "", fmt.Errorf("offload: %w", err)
		}
		res.Offload = r
		md += "\n### UDP offloads: shardd --gro and --gso on vs off\n\n" + r.rep.markdown() + r.Syslog.offloadMarkdown()
	}
	if p.xdp {
		runs, xmd, err := runXDPMode(shardd, shardload, o.queues, o.reps, o.dur, o.prog)
		if err != nil {
			return "", fmt.Errorf("xdp: %w", err)
		}
		res.XDP = runs
		md += xmd
	}
	if p.syslog {
		r, err := runSyslogMode(o.syslog, shardd, shardload, o.prog)
		if err != nil {
			return "", fmt.Errorf("syslog: %w", err)
		}
		res.Syslog = r
		md += r.markdown()
	}
	return md, nil
}

// serves is the handler and the protocol the server runs under the load.
func (s scenario) serves() (handler, proto string) {
	handler, proto = "discard", "udp"
	if s.Mode != "discard" {
		handler = "echo"
	}
	if s.Mode == "tcp-echo" {
		proto = "tcp"
	}
	return handler, proto
}

// loadArgs are shardload's flags for the load over proto (all but the address).
func (s scenario) loadArgs(proto string, dur time.Duration) []string {
	args := append([]string{"--json", "--progress=false", "--duration", dur.String(), "--size", strconv.Itoa(s.Size), "--proto", proto}, s.gsoArgs()...)
	switch s.Mode {
	case "echo":
		// A closed loop: one sender thread, the rest of the machine answers.
		return append(args, "--mode", "echo", "--senders", "1")
	case "tcp-echo":
		// Request, reply, request: every message is a read and a write on
		// the server, over 256 connections.
		return append(args, "--mode", "echo", "--senders", "1", "--flows", "256", "--window", "1")
	}
	// One sender per CPU, to offer more than any server here can take:
	// what a server receives is then its capacity, with drops counted.
	return append(args, "--wait", "0s")
}

// gsoArgs is shardload's --gso for the scenario: on for the offload
// mode's GSO sender, shardload's default otherwise.
func (s scenario) gsoArgs() []string {
	if s.GSO {
		return []string{"--gso", "on"}
	}
	return nil
}

// cmd is the command serving handler over proto on port: a peer's shell
// line with its placeholders filled in, or the server's argv.
func (s server) cmd(port int, handler, proto string) *exec.Cmd {
	if s.shell != "" {
		line := strings.NewReplacer("{port}", strconv.Itoa(port), "{handler}", handler, "{proto}", proto).Replace(s.shell)
		return exec.Command("sh", "-c", "exec "+line)
	}
	argv := s.command(port, handler, proto)
	return exec.Command(argv[0], argv[1:]...)
}

// measure starts srv on a free port, runs one shardload, and stops srv.
func measure(srv server, sc scenario, dur time.Duration, shardload string) (sample, error) {
	s := sample{Server: srv.Name, Scenario: sc.String()}
	port, err := freePort()
	if err != nil {
		return s, err
	}
	handler, proto := sc.serves()
	cmd := srv.cmd(port, handler, proto)
	serr, err := startServer(cmd, false)
	if err != nil {
		return s, err
	}
	defer stopServer(cmd)
	if err := waitBound(proto, port, 5*time.Second); err != nil {
		return s, fmt.Errorf("server did not bind 127.0.0.1:%d: %v; stderr: %s", port, err, serr.String())
	}

	args := append(sc.loadArgs(proto, dur), fmt.Sprintf("127.0.0.1:%d", port))
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

// startServer starts cmd as the leader of a process group of its own (so a
// peer's children stop with it: see stopServer) and collects its stderr,
// and its stdout too with stdout, in the buffer it returns, which can be
// read while the server still writes.
func startServer(cmd *exec.Cmd, stdout bool) (*lockedBuf, error) {
	out := &lockedBuf{}
	cmd.Stderr = out
	if stdout {
		cmd.Stdout = out
	}
	newProcessGroup(cmd)
	return out, cmd.Start()
}

// stopServer stops the process group startServer started: TERM, then KILL
// after 5 s.
func stopServer(cmd *exec.Cmd) {
	_ = signalGroup(cmd.Process.Pid, syscall.SIGTERM) // the group we started
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = signalGroup(cmd.Process.Pid, syscall.SIGKILL)
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

// portAndDir is what a server started fresh for one run gets: a free port
// and a new temporary directory (named prefix...; the caller removes it).
func portAndDir(prefix string) (port int, dir string, err error) {
	if port, err = freePort(); err != nil {
		return 0, "", err
	}
	dir, err = os.MkdirTemp("", prefix)
	return port, dir, err
}

// parseQueues reads --xdp-queues: queue counts from 1 to 64.
func parseQueues(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("--xdp-queues %q: want queue counts from 1 to 64, comma-separated, e.g. 1,2", list)
		}
		out = append(out, n)
	}
	return out, nil
}
