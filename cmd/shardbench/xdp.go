package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The xdp mode (not in the default --modes: it needs root): two network
// namespaces of its own joined by a veth pair, dnsperf in one (A,
// 198.18.0.1) against a server in the other (B, 198.18.0.2:5353): shardd
// --xdp, shardd over its UDP sockets, and Knot DNS in its XDP mode (xdp:
// listen: IFACE@PORT) and over UDP (both skipped without knotd),
// interleaved; then the discard drain (shardload one-way, no GSO) into
// shardd --xdp and over UDP. It runs once per queue layout (--xdp-queues):
// one receive queue per end (veth's default, and all Knot's XDP mode uses
// on veth) and one per shard. The namespaces are deleted by name at the
// end, whatever happened.
type xdpBench struct {
	nsA, nsB, devA, devB string
	dir                  string
	shardd, shardload    string
	dnsperf, knotd       string
	queries, zones       []string
	dur                  time.Duration
	queues               int // receive and transmit queues per end of the pair
}

// xdpRun is one measured run of the xdp mode.
type xdpRun struct {
	Load   string  `json:"load"` // dnsperf or discard
	Server string  `json:"server"`
	Queues int     `json:"queues"` // per end of the veth pair
	Rep    int     `json:"rep"`
	Rate   float64 `json:"rate"` // answered queries/s (dnsperf) or datagrams the server counted per second (discard)
	Sent   uint64  `json:"sent"`
	Lost   uint64  `json:"lost"` // unanswered queries, or datagrams sent but not counted by the server
	// CPUPerOp is the server's CPU time (user and system, its threads
	// only: not the softirq work the kernel did for it on the sender's
	// CPU) per answered query or counted datagram, in microseconds.
	CPUPerOp float64 `json:"cpu_us_per_op"`
}

const xdpServerAddr = "198.18.0.2:5353"

// runXDPMode runs the xdp mode once per queue layout and returns its
// markdown.
func runXDPMode(shardd, shardload string, queues []int, reps int, dur time.Duration, prog *progress) ([]xdpRun, string, error) {
	dnsperf, err := exec.LookPath("dnsperf")
	if err != nil {
		return nil, "", fmt.Errorf("xdp mode needs dnsperf: %w", err)
	}
	knotd, _ := exec.LookPath("knotd")
	var runs []xdpRun
	for _, q := range queues {
		b := &xdpBench{shardd: shardd, shardload: shardload, dur: dur, dnsperf: dnsperf, knotd: knotd, queues: q}
		r, err := b.run(reps, prog)
		runs = append(runs, r...)
		if err != nil {
			return runs, "", err
		}
	}
	return runs, xdpMarkdown(runs), nil
}

// run measures every contender reps times, interleaved, on a pair of its
// own.
func (b *xdpBench) run(reps int, prog *progress) ([]xdpRun, error) {
	var err error
	if b.dir, err = os.MkdirTemp("", "shardbench-xdp-"); err != nil {
		return nil, err
	}
	defer os.RemoveAll(b.dir)
	if err := b.setup(); err != nil {
		b.teardown()
		return nil, err
	}
	defer b.teardown()
	var runs []xdpRun
	for rep := 1; rep <= reps; rep++ {
		for _, srv := range b.servers() {
			prog.start("xdp", fmt.Sprintf("%s %s, %d queue(s), round %d", srv.load, srv.name, b.queues, rep), b.dur)
			r, err := b.measure(srv)
			if err != nil {
				prog.end("failed")
				return runs, err
			}
			r.Rep, r.Queues = rep, b.queues
			prog.end("%.0f/s, lost %d", r.Rate, r.Lost)
			runs = append(runs, r)
		}
	}
	return runs, nil
}

func (b *xdpBench) ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (b *xdpBench) setup() error {
	id := fmt.Sprint(os.Getpid())
	b.nsA, b.nsB, b.devA, b.devB = "shardbench-xa-"+id, "shardbench-xb-"+id, "sbxa"+id, "sbxb"+id
	q := fmt.Sprint(b.queues)
	steps := [][]string{
		{"netns", "add", b.nsA}, {"netns", "add", b.nsB},
		{"link", "add", b.devA, "netns", b.nsA, "numtxqueues", q, "numrxqueues", q, "type", "veth",
			"peer", "name", b.devB, "netns", b.nsB, "numtxqueues", q, "numrxqueues", q},
		{"-n", b.nsA, "addr", "add", "198.18.0.1/24", "dev", b.devA}, {"-n", b.nsB, "addr", "add", "198.18.0.2/24", "dev", b.devB},
		{"-n", b.nsA, "link", "set", b.devA, "up"}, {"-n", b.nsB, "link", "set", b.devB, "up"},
		{"-n", b.nsA, "link", "set", "lo", "up"}, {"-n", b.nsB, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := b.ip(s...); err != nil {
			return err
		}
	}
	b.queries = []string{filepath.Join("testdata", "dns", "queries.txt")}
	for _, z := range []string{"example.com", "2.0.192.in-addr.arpa", "edge.test", "child.edge.test"} {
		b.zones = append(b.zones, filepath.Join("testdata", "dns", z+".zone"))
	}
	return b.knotConf()
}

// teardown deletes the namespaces by name (and with them the pair).
func (b *xdpBench) teardown() {
	for _, ns := range []string{b.nsA, b.nsB} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

// knotConf writes Knot's two configurations, the same zones: UDP on B's
// address with XDP on B's end of the pair (knot.conf), and UDP alone
// (knot-udp.conf).
func (b *xdpBench) knotConf() error {
	head := fmt.Sprintf("server:\n  rundir: %s\n  listen: %s\n  udp-workers: 2\n  tcp-workers: 1\n  background-workers: 1\n",
		b.dir, strings.Replace(xdpServerAddr, ":", "@", 1))
	tail := fmt.Sprintf("database:\n  storage: %s\nlog:\n  - target: stderr\n    any: warning\nzone:\n", b.dir)
	for _, z := range b.zones {
		name := strings.TrimSuffix(filepath.Base(z), ".zone")
		abs, err := filepath.Abs(z)
		if err != nil {
			return err
		}
		tail += fmt.Sprintf("  - domain: %s\n    file: %s\n    journal-content: none\n    zonefile-sync: -1\n", name, abs)
	}
	xdp := fmt.Sprintf("xdp:\n  listen: %s@5353\n", b.devB)
	if err := os.WriteFile(filepath.Join(b.dir, "knot.conf"), []byte(head+xdp+tail), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.dir, "knot-udp.conf"), []byte(head+tail), 0o644)
}

// xdpServer is one contender: its command line in B and its load.
type xdpServer struct {
	name, load string
	argv       []string
}

func (b *xdpBench) servers() []xdpServer {
	dns := []string{b.shardd, "--handler", "dns", "--shards", "2"}
	for _, z := range b.zones {
		dns = append(dns, "--zone", z)
	}
	s := []xdpServer{
		{"shardd --xdp", "dnsperf", append(append([]string{}, dns...), "--xdp", b.devB, ":5353")},
		{"shardd UDP", "dnsperf", append(append([]string{}, dns...), ":5353")},
	}
	if b.knotd != "" {
		s = append(s, xdpServer{"Knot DNS XDP", "dnsperf", []string{b.knotd, "-c", filepath.Join(b.dir, "knot.conf")}},
			xdpServer{"Knot DNS UDP", "dnsperf", []string{b.knotd, "-c", filepath.Join(b.dir, "knot-udp.conf")}})
	}
	metrics := []string{"--metrics", "198.18.0.2:9153"}
	return append(s,
		xdpServer{"shardd --xdp", "discard", append([]string{b.shardd, "--handler", "discard", "--shards", "2", "--xdp", b.devB, ":5353"}, metrics...)},
		xdpServer{"shardd UDP", "discard", append([]string{b.shardd, "--handler", "discard", "--shards", "2", ":5353"}, metrics...)})
}

// measure starts srv in B, waits until it answers, runs its load from A
// and stops it (by its PID), detaching whatever XDP program it left
// (Knot leaves its own attached).
func (b *xdpBench) measure(srv xdpServer) (r xdpRun, err error) {
	r = xdpRun{Load: srv.load, Server: srv.name}
	var done uint64 // queries answered or datagrams counted, for CPUPerOp
	cmd := exec.Command("ip", append([]string{"netns", "exec", b.nsB}, srv.argv...)...)
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = exec.Command("ip", "-n", b.nsB, "link", "set", "dev", b.devB, "xdp", "off").Run()
	}()
	if err := b.waitReady(srv.load); err != nil {
		return r, fmt.Errorf("%s: %w", srv.name, err)
	}
	cpu0, err := processCPU(cmd.Process.Pid) // ip netns exec execs the server: same PID
	if err != nil {
		return r, err
	}
	defer func() {
		if cpu1, cerr := processCPU(cmd.Process.Pid); cerr == nil && done > 0 {
			r.CPUPerOp = float64((cpu1 - cpu0).Microseconds()) / float64(done)
		}
	}()
	if srv.load == "discard" {
		r, err = b.discard(r)
		done = r.Sent - r.Lost
		return r, err
	}
	out, err := exec.Command("ip", "netns", "exec", b.nsA, b.dnsperf, "-s", "198.18.0.2", "-p", "5353", "-d", b.queries[0],
		"-l", fmt.Sprint(int(b.dur.Seconds())), "-c", "8", "-T", "1", "-q", "200", "-t", "2").CombinedOutput()
	if err != nil {
		return r, fmt.Errorf("dnsperf: %v: %s", err, out)
	}
	s, err := parseDnsperf(out)
	r.Rate, r.Sent, r.Lost, done = s.QPS, s.Sent, s.Lost, s.Completed
	return r, err
}

// waitReady waits (30 s at most) for the server: one dnsperf query
// answered, or the metrics listener up for the discard server.
func (b *xdpBench) waitReady(load string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var out []byte
		if load == "discard" {
			out, _ = exec.Command("ip", "netns", "exec", b.nsA, b.shardload, "--duration", "100ms", "--progress=false", "--json",
				"--metrics", "http://198.18.0.2:9153/metrics", xdpServerAddr).Output()
			if strings.Contains(string(out), `"server"`) {
				return nil
			}
			continue
		}
		out, _ = exec.Command("ip", "netns", "exec", b.nsA, b.dnsperf, "-s", "198.18.0.2", "-p", "5353", "-d", b.queries[0], "-n", "1", "-t", "1").CombinedOutput()
		if s, err := parseDnsperf(out); err == nil && s.Completed > 0 {
			return nil
		}
	}
	return errors.New("not ready within 30 s")
}

// discard runs shardload one-way without GSO (each datagram its own frame,
// as XDP sees them) and takes the server's count from its metrics.
func (b *xdpBench) discard(r xdpRun) (xdpRun, error) {
	var sum struct {
		Sent   uint64 `json:"sent"`
		Server *struct {
			Received uint64 `json:"received"`
		} `json:"server"`
		Duration float64 `json:"duration_s"`
	}
	args := []string{"netns", "exec", b.nsA, b.shardload, "--json", "--progress=false", "--gso", "off", "--size", "64", "--flows", "64",
		"--duration", b.dur.String(), "--metrics", "http://198.18.0.2:9153/metrics", xdpServerAddr}
	if err := runShardload("ip", b.dur, args, &sum); err != nil {
		return r, err
	}
	if sum.Server == nil || sum.Duration <= 0 {
		return r, errors.New("shardload: no server count")
	}
	r.Sent, r.Rate = sum.Sent, float64(sum.Server.Received)/sum.Duration
	r.Lost = sum.Sent - min(sum.Sent, sum.Server.Received)
	return r, nil
}

func xdpMarkdown(runs []xdpRun) string {
	md := "\n### AF_XDP: shardd --xdp vs its UDP sockets and Knot DNS XDP and UDP (veth pair between two namespaces)\n\n" +
		"| queues | load | server | round | rate /s | sent | lost | server CPU us per op |\n|---|---|---|---|---|---|---|---|\n"
	for _, r := range runs {
		md += fmt.Sprintf("| %d | %s | %s | %d | %.0f | %d | %d | %.2f |\n", r.Queues, r.Load, r.Server, r.Rep, r.Rate, r.Sent, r.Lost, r.CPUPerOp)
	}
	md += "\nServer CPU is the server process's user and system time over the load, per answered query or counted datagram: " +
		"its system calls and the kernel work they run are in it, the receive work the sender's CPU does for it (veth) is not.\n"
	return md + xdpRatios(runs)
}

// xdpRatios is a line per queue layout and round: each server's dnsperf
// rate over shardd UDP's in the same round, the figure the goals are
// written in.
func xdpRatios(runs []xdpRun) string {
	type key struct{ queues, rep int }
	base := map[key]float64{}
	for _, r := range runs {
		if r.Load == "dnsperf" && r.Server == "shardd UDP" {
			base[key{r.Queues, r.Rep}] = r.Rate
		}
	}
	md := "\nRatios to shardd UDP in the same round (dnsperf):\n\n"
	line := ""
	last := key{-1, -1}
	for _, r := range runs {
		k := key{r.Queues, r.Rep}
		if r.Load != "dnsperf" || base[k] == 0 || r.Server == "shardd UDP" {
			continue
		}
		if k != last {
			if line != "" {
				md += line + "\n"
			}
			line = fmt.Sprintf("- %d queue(s), round %d:", k.queues, k.rep)
			last = k
		}
		line += fmt.Sprintf(" %s %.2fx", r.Server, r.Rate/base[k])
	}
	if line != "" {
		md += line + "\n"
	}
	return md
}
