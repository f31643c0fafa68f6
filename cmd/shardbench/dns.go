package main

// The dns mode: queries/s of shardd --handler dns against Knot DNS serving
// the same zone files on the same CPUs, side by side in one run.
//
// Every server is started fresh for each measurement on a free loopback
// port: Knot from a configuration generated into a temporary directory
// (its zones, rundir and databases live there too; it runs in the
// foreground and is stopped by its PID), shardd from bin/. Before any
// load, every distinct query of the query file is asked of every server
// and the answers compared with Knot's (rcode, AA, TC and every section's
// records), so the servers are known to do the same work. Then, for each
// client and repetition, in a rotating order: dnsperf with the query file
// (the mix: positive answers, CNAME chains, wildcards, NODATA, NXDOMAIN,
// referrals) and, optionally, shardload with one DNS query as its payload.
// Last, a fixed-rate run per server that must lose nothing.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dnsConfig holds the dns mode's flags.
type dnsConfig struct {
	queries   string        // dnsperf data file: "name type" per line
	zones     string        // comma-separated zone files
	clients   string        // dnsperf, shardload
	dnsperf   string        // dnsperf's load shape
	payload   string        // shardload's query
	zeroRate  int           // the fixed-rate check's queries/s
	zeroDur   time.Duration // and its length
	withOne   bool          // also shardd with 1 shard
	rrlRate   int           // also shardd with --rrl-rate rrlRate (0: not)
	knotd     string        // the Knot binary
	nsd       string        // the NSD binary ("": NSD is not measured)
	dnssec    bool          // the DO bit on every query (signed zones)
	dnsperfEx string        // the dnsperf binary
}

func addDNSFlags(fs *flag.FlagSet) *dnsConfig {
	c := &dnsConfig{}
	fs.StringVar(&c.queries, "dns-queries", "testdata/dns/queries.txt", "dns: the query file (dnsperf format, \"name type\" per line)")
	fs.StringVar(&c.zones, "dns-zones", "testdata/dns/example.com.zone,testdata/dns/2.0.192.in-addr.arpa.zone", "dns: the zone files both servers serve, comma-separated")
	fs.StringVar(&c.clients, "dns-clients", "dnsperf,shardload", "dns: load clients: dnsperf (the query file) and shardload (--dns-payload, one query)")
	fs.StringVar(&c.dnsperf, "dns-dnsperf-args", "-c 8 -T 2 -q 500", "dns: dnsperf's clients, threads and queries outstanding")
	fs.StringVar(&c.payload, "dns-payload", "testdata/dns/query-a-example.com.bin", "dns: the DNS query shardload sends (its ID carries the sequence)")
	fs.IntVar(&c.zeroRate, "dns-zero-rate", 20000, "dns: queries/s of the zero-loss check (0: skip it)")
	fs.DurationVar(&c.zeroDur, "dns-zero-duration", 3*time.Second, "dns: length of the zero-loss check")
	fs.BoolVar(&c.withOne, "dns-one-shard", true, "dns: also measure shardd with 1 shard")
	fs.IntVar(&c.rrlRate, "dns-rrl-rate", 0, "dns: also measure shardd with response rate limiting at this rate, e.g. 10000000, one no benign client reaches: what RRL costs (0: not)")
	fs.StringVar(&c.knotd, "dns-knotd", "knotd", "dns: the Knot DNS daemon")
	fs.StringVar(&c.nsd, "dns-nsd", "", "dns: also measure NSD, this binary (e.g. nsd; empty: not)")
	fs.BoolVar(&c.dnssec, "dns-dnssec", false, "dns: set the DO bit on every query (dnsperf -D, and the answer check): for signed --dns-zones")
	fs.StringVar(&c.dnsperfEx, "dns-dnsperf", "dnsperf", "dns: the dnsperf binary")
	return c
}

// planned are the dns mode's runs for the progress line: the answer check
// (a start of each server), the measured runs and the zero-loss check.
func (c *dnsConfig) planned(reps int, dur time.Duration) []plannedRuns {
	servers := 2
	if c.withOne && runtime.GOMAXPROCS(0) > 1 {
		servers++ // as dnsSetup.servers
	}
	if c.rrlRate > 0 {
		servers++
	}
	if c.nsd != "" {
		servers++
	}
	runs := []plannedRuns{{"dns check", servers, 0}, {"dns", reps * len(strings.Split(c.clients, ",")) * servers, dur}}
	if c.zeroRate > 0 {
		runs = append(runs, plannedRuns{"dns zero-loss", servers, c.zeroDur})
	}
	return runs
}

// dnsServer is one contender in the dns mode.
type dnsServer struct {
	Name     string
	Baseline bool // Knot: the ratios are to it
	// answerOnly: the answer check compares the rcode, header bits and
	// answer section only (NSD fills authority and additional its own way).
	answerOnly bool
	// command returns the argv serving the zones on port; dir is a fresh
	// temporary directory the server may use.
	command func(dir string, port int) ([]string, error)
}

// dnsSample is one measured run of the dns mode.
type dnsSample struct {
	Server     string  `json:"server"`
	Client     string  `json:"client"` // dnsperf, shardload, or "dnsperf -Q N" for the zero-loss check
	Rep        int     `json:"rep"`
	Sent       uint64  `json:"sent"`
	Completed  uint64  `json:"completed"`
	Lost       uint64  `json:"lost"`
	QPS        float64 `json:"qps"`                  // completed queries/s
	Latency    float64 `json:"avg_latency_s"`        // dnsperf's average; shardload's p50
	Drops      uint64  `json:"kernel_drops"`         // /proc/net/udp drops on the server's port
	RcodeCount string  `json:"rcodes,omitempty"`     // dnsperf's response codes line
	Seconds    float64 `json:"duration_s,omitempty"` // the client's run time
}

// dnsResult is what the dns mode adds to results.json.
type dnsResult struct {
	Skipped   string      `json:"skipped,omitempty"` // why the mode did not run
	Knot      string      `json:"knot"`
	Dnsperf   string      `json:"dnsperf"`
	Queries   string      `json:"queries"`
	Distinct  int         `json:"distinct_queries"`
	Commands  []string    `json:"commands"` // client command lines, {port} for the server's port
	Servers   []string    `json:"servers"`
	Samples   []dnsSample `json:"samples"`
	ZeroLoss  []dnsSample `json:"zero_loss,omitempty"`
	Reps      int         `json:"reps"`
	Duration  string      `json:"duration"`
	TookSec   float64     `json:"took_s"`
	machine   machineInfo
	clients   []string
	zeroRate  int
	zeroDur   time.Duration
	baseline  string
	checkNote string
}

// missingTool is a third-party program the dns mode needs and lacks.
type missingTool struct{ error }

// runDNSMode runs the dns mode. As part of the default set (no --modes
// given) it is skipped, with a note in results.md, where knotd or dnsperf is
// not installed; asked for by name it fails without them.
func runDNSMode(fs *flag.FlagSet, c *dnsConfig, shardd, shardload string, reps int, dur time.Duration, prog *progress) (*dnsResult, error) {
	res, err := runDNS(c, shardd, shardload, reps, dur, prog)
	if skipped(fs, err, "dns", c.planned(reps, dur), prog) {
		return &dnsResult{Skipped: err.Error()}, nil
	}
	return res, err
}

// skipped tells whether a mode that failed with err is to be skipped: a
// missingTool error, the mode run as part of the default set (no --modes
// given). Its planned runs then leave the progress line, and stderr says
// why.
func skipped(fs *flag.FlagSet, err error, mode string, planned []plannedRuns, prog *progress) bool {
	var mt *missingTool
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "modes" })
	if !errors.As(err, &mt) || explicit {
		return false
	}
	fmt.Fprintf(os.Stderr, "shardbench: %s mode skipped: %v\n", mode, err)
	for _, r := range planned {
		prog.plan(r.kind, -r.runs, r.load)
	}
	return true
}

// runDNS runs the dns mode: find the tools, read the inputs, check that
// every server answers alike, then the measured rounds and the zero-loss
// check.
func runDNS(c *dnsConfig, shardd, shardload string, reps int, dur time.Duration, prog *progress) (*dnsResult, error) {
	start := time.Now()
	st, err := findDNSTools(c)
	if err != nil {
		return nil, err
	}
	st.prog = prog
	if err := st.readInputs(c); err != nil {
		return nil, err
	}
	servers := st.servers(c, shardd)
	res := st.newResult(c, servers, reps, dur)

	// The same answers from every server, or the comparison means nothing.
	note, err := checkSameAnswers(servers, st.questions, c.dnssec, prog)
	if err != nil {
		return nil, err
	}
	res.checkNote = note
	fmt.Fprintf(os.Stderr, "dns: %s\n", note)

	if err := st.rounds(res, servers, shardload, reps, dur); err != nil {
		return nil, err
	}
	if c.zeroRate > 0 {
		if err := st.zeroLoss(c, res, servers); err != nil {
			return nil, err
		}
	}
	res.TookSec = time.Since(start).Seconds()
	return res, nil
}

// dnsSetup is what the dns mode runs with: the tools found and the inputs
// read (absolute paths).
type dnsSetup struct {
	knotd, dnsperf string // dnsperf "" when no client needs it
	nsd            string // "" when not measured
	clients        []string
	perfArgs       []string // --dns-dnsperf-args
	queries        string
	questions      []question
	payload        string
	zones, origins []string
	prog           *progress
}

// findDNSTools finds Knot and, if a client or the zero-loss check needs
// it, dnsperf (a missingTool error without them), and checks the clients.
func findDNSTools(c *dnsConfig) (*dnsSetup, error) {
	st := &dnsSetup{clients: strings.Split(c.clients, ","), perfArgs: strings.Fields(c.dnsperf)}
	if c.dnssec {
		st.perfArgs = append(st.perfArgs, "-D")
	}
	var err error
	if st.knotd, err = exec.LookPath(c.knotd); err != nil {
		return nil, &missingTool{fmt.Errorf("dns mode needs Knot DNS (apt-get install knot): %w", err)}
	}
	if c.nsd != "" {
		if st.nsd, err = exec.LookPath(c.nsd); err != nil {
			return nil, &missingTool{fmt.Errorf("--dns-nsd needs NSD (apt-get install nsd): %w", err)}
		}
	}
	for _, cl := range st.clients {
		switch cl {
		case "dnsperf":
			if st.dnsperf, err = exec.LookPath(c.dnsperfEx); err != nil {
				return nil, &missingTool{fmt.Errorf("dns mode needs dnsperf (apt-get install dnsperf): %w", err)}
			}
		case "shardload":
		default:
			return nil, &usageError{fmt.Errorf("--dns-clients: unknown client %q", cl)}
		}
	}
	if c.zeroRate > 0 && st.dnsperf == "" {
		if st.dnsperf, err = exec.LookPath(c.dnsperfEx); err != nil {
			return nil, &missingTool{fmt.Errorf("the zero-loss check needs dnsperf (apt-get install dnsperf): %w", err)}
		}
	}
	return st, nil
}

// readInputs reads the query file and the zone files' origins.
func (st *dnsSetup) readInputs(c *dnsConfig) error {
	var err error
	if st.queries, err = filepath.Abs(c.queries); err != nil {
		return err
	}
	if st.questions, err = readQueryFile(st.queries); err != nil {
		return err
	}
	if st.payload, err = filepath.Abs(c.payload); err != nil {
		return err
	}
	for _, z := range strings.Split(c.zones, ",") {
		p, err := filepath.Abs(z)
		if err != nil {
			return err
		}
		st.zones = append(st.zones, p)
	}
	st.origins, err = zoneOrigins(st.zones)
	return err
}

// servers are the contenders: Knot with a UDP worker per CPU (the
// baseline), shardd with a shard per CPU, and (--dns-one-shard) with one.
func (st *dnsSetup) servers(c *dnsConfig, shardd string) []dnsServer {
	ncpu := runtime.GOMAXPROCS(0)
	shard := func(shards int, extra ...string) func(string, int) ([]string, error) {
		return func(_ string, port int) ([]string, error) {
			argv := append([]string{shardd, "--handler", "dns", "--proto", "udp", "--log-level", "warn", "--shards", strconv.Itoa(shards)}, extra...)
			for _, z := range st.zones {
				argv = append(argv, "--zone", z)
			}
			return append(argv, fmt.Sprintf("127.0.0.1:%d", port)), nil
		}
	}
	servers := []dnsServer{
		{Name: fmt.Sprintf("knot (%d UDP workers)", ncpu), Baseline: true, command: func(dir string, port int) ([]string, error) {
			conf, err := writeKnotConf(dir, port, ncpu, st.zones, st.origins)
			return []string{st.knotd, "-c", conf}, err
		}},
		{Name: fmt.Sprintf("shardd (%d shards, one per CPU)", ncpu), command: shard(ncpu)},
	}
	if c.withOne && ncpu > 1 {
		servers = append(servers, dnsServer{Name: "shardd 1 shard", command: shard(1)})
	}
	if c.rrlRate > 0 {
		servers = append(servers, dnsServer{Name: fmt.Sprintf("shardd (%d shards, --rrl-rate %d)", ncpu, c.rrlRate),
			command: shard(ncpu, "--rrl-rate", strconv.Itoa(c.rrlRate))})
	}
	if st.nsd != "" {
		servers = append(servers, dnsServer{Name: fmt.Sprintf("nsd (%d servers)", ncpu), answerOnly: true, command: func(dir string, port int) ([]string, error) {
			conf, err := writeNSDConf(dir, port, ncpu, st.zones, st.origins)
			return []string{st.nsd, "-d", "-c", conf}, err
		}})
	}
	return servers
}

// newResult is the dns mode's result before any run: what runs, with which
// versions and client command lines.
func (st *dnsSetup) newResult(c *dnsConfig, servers []dnsServer, reps int, dur time.Duration) *dnsResult {
	res := &dnsResult{Queries: c.queries, Distinct: len(st.questions), Reps: reps, Duration: dur.String(), machine: readMachine(),
		clients: st.clients, zeroRate: c.zeroRate, zeroDur: c.zeroDur, baseline: servers[0].Name}
	res.Knot = firstLine(exec.Command(st.knotd, "--version"))
	if st.dnsperf != "" {
		res.Dnsperf = dnsperfVersion(st.dnsperf)
	}
	for _, s := range servers {
		res.Servers = append(res.Servers, s.Name)
	}
	secs := strconv.FormatFloat(dur.Seconds(), 'f', -1, 64)
	for _, cl := range st.clients {
		if cl == "dnsperf" {
			res.Commands = append(res.Commands, strings.Join(append([]string{"dnsperf", "-s", "127.0.0.1", "-p", "{port}", "-d", c.queries, "-l", secs}, append(st.perfArgs, "-t", "2", "-e")...), " "))
		} else {
			res.Commands = append(res.Commands, fmt.Sprintf("shardload --mode echo --senders 1 --gso off --payload %s --duration %v --json {addr}", c.payload, dur))
		}
	}
	return res
}

// rounds measures every server with every client, reps times, the order of
// the servers rotating so that no server always runs first.
func (st *dnsSetup) rounds(res *dnsResult, servers []dnsServer, shardload string, reps int, dur time.Duration) error {
	secs := strconv.FormatFloat(dur.Seconds(), 'f', -1, 64)
	for rep := 1; rep <= reps; rep++ {
		for _, cl := range st.clients {
			for i := range servers {
				srv := servers[(i+rep)%len(servers)]
				st.prog.start("dns", fmt.Sprintf("dns %s, %s rep %d/%d", cl, srv.Name, rep, reps), dur)
				s, err := measureDNS(srv, func(port int) (dnsSample, error) {
					if cl == "dnsperf" {
						return runDnsperf(st.dnsperf, port, st.queries, append([]string{"-l", secs}, st.perfArgs...), dur)
					}
					return runShardloadDNS(shardload, port, st.payload, dur)
				})
				if err != nil {
					st.prog.end("failed")
					return fmt.Errorf("dns, %s, %s, rep %d: %w", srv.Name, cl, rep, err)
				}
				s.Server, s.Client, s.Rep = srv.Name, cl, rep
				res.Samples = append(res.Samples, s)
				st.prog.end("%.0f q/s, lost %d, drops %d", s.QPS, s.Lost, s.Drops)
			}
		}
	}
	return nil
}

// zeroLoss runs the fixed-rate check, once per server: dnsperf at
// --dns-zero-rate for --dns-zero-duration, which must lose nothing.
func (st *dnsSetup) zeroLoss(c *dnsConfig, res *dnsResult, servers []dnsServer) error {
	zsecs := strconv.FormatFloat(c.zeroDur.Seconds(), 'f', -1, 64)
	for _, srv := range servers {
		st.prog.start("dns zero-loss", fmt.Sprintf("dns zero-loss check, %s at %d q/s", srv.Name, c.zeroRate), c.zeroDur)
		s, err := measureDNS(srv, func(port int) (dnsSample, error) {
			return runDnsperf(st.dnsperf, port, st.queries, []string{"-l", zsecs, "-Q", strconv.Itoa(c.zeroRate), "-c", "4"}, c.zeroDur)
		})
		if err != nil {
			st.prog.end("failed")
			return fmt.Errorf("dns zero-loss check, %s: %w", srv.Name, err)
		}
		s.Server, s.Client, s.Rep = srv.Name, fmt.Sprintf("dnsperf -Q %d", c.zeroRate), 1
		res.ZeroLoss = append(res.ZeroLoss, s)
		st.prog.end("sent %d, completed %d, lost %d, drops %d", s.Sent, s.Completed, s.Lost, s.Drops)
	}
	res.Commands = append(res.Commands, fmt.Sprintf("dnsperf -s 127.0.0.1 -p {port} -d %s -l %s -Q %d -c 4 -t 2 -e", c.queries, zsecs, c.zeroRate))
	return nil
}

// measureDNS runs one client against srv (withServer), then counts the
// kernel's drops on its port once the server has read what is queued.
func measureDNS(srv dnsServer, client func(port int) (dnsSample, error)) (dnsSample, error) {
	var s dnsSample
	err := withServer(srv, func(port int) error {
		var err error
		if s, err = client(port); err != nil {
			return err
		}
		ps, err := waitDrained(port, 3*time.Second)
		s.Drops = ps.drops
		return err
	})
	return s, err
}

// withServer starts srv on a free port, waits until it answers, runs f and
// stops the server (by the PID of the process group it was started in).
func withServer(srv dnsServer, f func(port int) error) error {
	port, dir, err := portAndDir("shardbench-dns-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	argv, err := srv.command(dir, port)
	if err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	serr, err := startServer(cmd, true)
	if err != nil {
		return err
	}
	defer stopServer(cmd)
	if err := waitBound("udp", port, 5*time.Second); err != nil {
		return fmt.Errorf("%s did not bind 127.0.0.1:%d: %v; output: %s", srv.Name, port, err, serr.String())
	}
	if err := waitAnswering(port, 10*time.Second); err != nil {
		return fmt.Errorf("%s: %v; output: %s", srv.Name, err, serr.String())
	}
	if err := f(port); err != nil {
		return fmt.Errorf("%v; server output: %s", err, serr.String())
	}
	return nil
}

// waitAnswering asks for the SOA of example.com (or the first zone) until
// an authoritative answer comes: Knot binds before its zones are loaded.
func waitAnswering(port int, limit time.Duration) error {
	cl := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		m := new(dns.Msg)
		m.SetQuestion("example.com.", dns.TypeSOA)
		r, _, err := cl.Exchange(m, fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil && r.Authoritative {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("rcode %s, AA %v", dns.RcodeToString[r.Rcode], r.Authoritative)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no authoritative answer within %v: %v", limit, last)
}

// writeKnotConf writes a Knot configuration serving the zones on
// 127.0.0.1@port with udpWorkers UDP workers; everything Knot writes
// (rundir, PID file, control socket, databases) stays in dir, no journal,
// the zone files are never written back.
func writeKnotConf(dir string, port, udpWorkers int, zones, origins []string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n    rundir: %q\n    listen: 127.0.0.1@%d\n    udp-workers: %d\n    tcp-workers: 1\n    background-workers: 1\n", dir, port, udpWorkers)
	fmt.Fprintf(&b, "database:\n    storage: %q\ncontrol:\n    listen: %q\n", dir, filepath.Join(dir, "knot.sock"))
	fmt.Fprintf(&b, "log:\n  - target: stderr\n    any: warning\n")
	fmt.Fprintf(&b, "template:\n  - id: default\n    storage: %q\n    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n", dir)
	b.WriteString("zone:\n")
	for i, z := range zones {
		data, err := os.ReadFile(z)
		if err != nil {
			return "", err
		}
		name := strings.TrimSuffix(origins[i], ".") + ".zone"
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "  - domain: %s\n    file: %q\n", origins[i], filepath.Join(dir, name))
	}
	conf := filepath.Join(dir, "knot.conf")
	return conf, os.WriteFile(conf, []byte(b.String()), 0o644)
}

// writeNSDConf writes an NSD configuration serving the zones on
// 127.0.0.1@port with servers server processes; its PID file, state and
// zone list stay in dir, no database, no control, no privilege drop, and
// no response rate limiting (on by default in Debian's NSD: 200/s).
func writeNSDConf(dir string, port, servers int, zones, origins []string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n    ip-address: 127.0.0.1@%d\n    server-count: %d\n    username: \"\"\n    chroot: \"\"\n", port, servers)
	fmt.Fprintf(&b, "    database: \"\"\n    zonesdir: %q\n    pidfile: %q\n    xfrdfile: %q\n    zonelistfile: %q\n    verbosity: 0\n    minimal-responses: yes\n    rrl-ratelimit: 0\n",
		dir, filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "xfrd.state"), filepath.Join(dir, "zone.list"))
	b.WriteString("remote-control:\n    control-enable: no\n")
	for i, z := range zones {
		fmt.Fprintf(&b, "zone:\n    name: %s\n    zonefile: %q\n", origins[i], z)
	}
	conf := filepath.Join(dir, "nsd.conf")
	return conf, os.WriteFile(conf, []byte(b.String()), 0o644)
}

// zoneOrigins reads each zone file's SOA owner: the name Knot serves it as.
func zoneOrigins(zones []string) ([]string, error) {
	var origins []string
	for _, z := range zones {
		f, err := os.Open(z)
		if err != nil {
			return nil, err
		}
		zp := dns.NewZoneParser(f, "", z)
		origin := ""
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			if rr.Header().Rrtype == dns.TypeSOA {
				origin = rr.Header().Name
				break
			}
		}
		err = zp.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
		if origin == "" {
			return nil, fmt.Errorf("%s: no SOA record", z)
		}
		origins = append(origins, origin)
	}
	return origins, nil
}

// question is one line of a dnsperf query file.
type question struct {
	name  string
	qtype uint16
}

// readQueryFile reads "name type" lines (dnsperf's format; # comments).
func readQueryFile(path string) ([]question, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen := map[question]bool{}
	var qs []question
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		t, ok := dns.StringToType[strings.ToUpper(fields[len(fields)-1])]
		if len(fields) != 2 || !ok {
			return nil, fmt.Errorf("%s:%d: want \"name type\", got %q", path, n, line)
		}
		q := question{dns.Fqdn(fields[0]), t}
		if !seen[q] {
			seen[q] = true
			qs = append(qs, q)
		}
	}
	if len(qs) == 0 && sc.Err() == nil {
		return nil, fmt.Errorf("%s: no queries", path)
	}
	return qs, sc.Err()
}

// checkSameAnswers runs every server once and asks each the questions
// (with EDNS, as dnsperf -e does); every answer must match the baseline's
// in rcode, AA, TC and each section's records, and none may be truncated.
func checkSameAnswers(servers []dnsServer, qs []question, do bool, prog *progress) (string, error) {
	answers := make([][]string, len(servers))
	for i, srv := range servers {
		prog.start("dns check", fmt.Sprintf("dns answer check, %s", srv.Name), 0)
		err := withServer(srv, func(port int) error {
			cl := &dns.Client{Net: "udp", Timeout: 2 * time.Second, UDPSize: 4096}
			for _, q := range qs {
				m := new(dns.Msg)
				m.SetQuestion(q.name, q.qtype)
				m.RecursionDesired = false
				m.SetEdns0(4096, do)
				r, _, err := cl.Exchange(m, fmt.Sprintf("127.0.0.1:%d", port))
				if err != nil {
					return fmt.Errorf("%s %s: %v", q.name, dns.TypeToString[q.qtype], err)
				}
				if r.Truncated {
					return fmt.Errorf("%s %s: truncated answer (the query file must fit 1232 bytes)", q.name, dns.TypeToString[q.qtype])
				}
				answers[i] = append(answers[i], canonical(r))
			}
			return nil
		})
		if err != nil {
			prog.end("failed")
			return "", fmt.Errorf("answer check, %s: %w", srv.Name, err)
		}
		prog.end("%d answers", len(answers[i]))
	}
	var diffs []string
	for i := 1; i < len(servers); i++ {
		for j, q := range qs {
			if a, b := answers[i][j], answers[0][j]; servers[i].answerOnly && answerPart(a) != answerPart(b) || !servers[i].answerOnly && a != b {
				diffs = append(diffs, fmt.Sprintf("%s %s:\n%s:\n%s\n%s:\n%s", q.name, dns.TypeToString[q.qtype], servers[0].Name, answers[0][j], servers[i].Name, answers[i][j]))
			}
		}
	}
	if len(diffs) > 0 {
		return "", fmt.Errorf("the servers answer differently, so their rates are not comparable:\n%s", strings.Join(diffs, "\n"))
	}
	return fmt.Sprintf("all %d distinct queries answered alike by every server (rcode, AA, TC, every section's records; NSD's answer section only)", len(qs)), nil
}

// answerPart is a canonical reply without its authority and additional
// sections.
func answerPart(canon string) string {
	before, _, _ := strings.Cut(canon, "\nauthority:")
	return before
}

// canonical renders a reply for comparison: header bits and sorted records
// per section (OPT left out: its options are the server's own).
func canonical(r *dns.Msg) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rcode %s aa %v tc %v\n", dns.RcodeToString[r.Rcode], r.Authoritative, r.Truncated)
	for i, sec := range [][]dns.RR{r.Answer, r.Ns, r.Extra} {
		var rrs []string
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			rrs = append(rrs, strings.ToLower(rr.String()))
		}
		sort.Strings(rrs)
		fmt.Fprintf(&b, "%s: %s\n", [...]string{"answer", "authority", "additional"}[i], strings.Join(rrs, " | "))
	}
	return b.String()
}

var dnsperfField = regexp.MustCompile(`(?m)^\s*(Queries sent|Queries completed|Queries lost|Queries per second|Run time \(s\)|Average Latency \(s\)|Response codes):\s*(.*)$`)

// runDnsperf runs dnsperf against 127.0.0.1:port and parses its statistics.
func runDnsperf(dnsperf string, port int, queries string, args []string, dur time.Duration) (dnsSample, error) {
	var s dnsSample
	argv := append([]string{"-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", queries}, args...)
	argv = append(argv, "-t", "2", "-e")
	ctx, cancel := context.WithTimeout(context.Background(), dur+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, dnsperf, argv...).CombinedOutput()
	if err != nil {
		return s, fmt.Errorf("dnsperf %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return parseDnsperf(out)
}

// parseDnsperf reads dnsperf's statistics block.
func parseDnsperf(out []byte) (dnsSample, error) {
	var s dnsSample
	got := map[string]string{}
	for _, m := range dnsperfField.FindAllSubmatch(out, -1) {
		got[string(m[1])] = strings.TrimSpace(string(m[2]))
	}
	num := func(key string) (float64, error) {
		v, ok := got[key]
		if !ok {
			return 0, fmt.Errorf("dnsperf printed no %q:\n%s", key, out)
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0, fmt.Errorf("dnsperf: empty %q", key)
		}
		return strconv.ParseFloat(f[0], 64)
	}
	var vals [6]float64
	for i, k := range []string{"Queries sent", "Queries completed", "Queries lost", "Queries per second", "Run time (s)", "Average Latency (s)"} {
		v, err := num(k)
		if err != nil {
			return s, err
		}
		vals[i] = v
	}
	s.Sent, s.Completed, s.Lost = uint64(vals[0]), uint64(vals[1]), uint64(vals[2])
	s.QPS, s.Seconds, s.Latency = vals[3], vals[4], vals[5]
	s.RcodeCount = got["Response codes"]
	return s, nil
}

// runShardloadDNS runs shardload's echo mode with one DNS query as payload.
func runShardloadDNS(shardload string, port int, payload string, dur time.Duration) (dnsSample, error) {
	var s dnsSample
	var sum struct {
		Sent     uint64   `json:"sent"`
		Received *uint64  `json:"received"`
		Lost     *uint64  `json:"lost"`
		Rate     *float64 `json:"received_per_s"`
		Duration float64  `json:"duration_s"`
		RTT      *struct {
			P50 int64 `json:"p50"`
		} `json:"rtt_ns"`
	}
	// --gso off: one datagram per query, as DNS clients send them. With
	// GSO, shardd's UDP GRO takes a flow's queries in one receive, which no
	// resolver's traffic allows: 1.78M against Knot's 291k queries/s.
	args := []string{"--json", "--progress=false", "--mode", "echo", "--senders", "1", "--gso", "off",
		"--payload", payload, "--duration", dur.String(), fmt.Sprintf("127.0.0.1:%d", port)}
	if err := runShardload(shardload, dur, args, &sum); err != nil {
		return s, err
	}
	if sum.Received == nil || sum.Lost == nil || sum.Rate == nil {
		return s, errors.New("shardload: echo run without replies")
	}
	s.Sent, s.Completed, s.Lost, s.QPS, s.Seconds = sum.Sent, *sum.Received, *sum.Lost, *sum.Rate, sum.Duration
	if sum.RTT != nil {
		s.Latency = float64(sum.RTT.P50) / 1e9
	}
	return s, nil
}

func firstLine(cmd *exec.Cmd) string {
	out, _ := cmd.CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// dnsperfVersion reads "Version X" from dnsperf's help text.
func dnsperfVersion(dnsperf string) string {
	out, _ := exec.Command(dnsperf, "-h").CombinedOutput()
	if m := regexp.MustCompile(`Version (\S+)`).FindSubmatch(out); m != nil {
		return "dnsperf " + string(m[1])
	}
	return "dnsperf"
}

// dnsCell summarises one server under one client.
type dnsCell struct {
	median, min, max float64
	lost, drops      uint64 // medians
	latency          float64
	n                int
}

func (r *dnsResult) cell(server, client string) (dnsCell, bool) {
	var qps, lat []float64
	var lost, drops []uint64
	for _, s := range r.Samples {
		if s.Server == server && s.Client == client {
			qps, lat = append(qps, s.QPS), append(lat, s.Latency)
			lost, drops = append(lost, s.Lost), append(drops, s.Drops)
		}
	}
	if len(qps) == 0 {
		return dnsCell{}, false
	}
	c := dnsCell{median: median(qps), min: math.Inf(1), max: math.Inf(-1), lost: median(lost), drops: median(drops), latency: median(lat), n: len(qps)}
	for _, v := range qps {
		c.min, c.max = math.Min(c.min, v), math.Max(c.max, v)
	}
	return c, true
}

// maxLost is the most any run of server under client lost.
func (r *dnsResult) maxLost(server, client string) uint64 {
	var m uint64
	for _, s := range r.Samples {
		if s.Server == server && s.Client == client {
			m = max(m, s.Lost)
		}
	}
	return m
}

func (r *dnsResult) markdown() string {
	var b strings.Builder
	m := r.machine
	fmt.Fprintf(&b, "\n### DNS: shardd --handler dns vs Knot DNS\n\n")
	if r.Skipped != "" {
		fmt.Fprintf(&b, "Skipped: %s.\n", r.Skipped)
		return b.String()
	}
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, Linux %s, %s, %s; %s, %s. Both servers serve the same zone files on 127.0.0.1, each started fresh per run on the same CPUs as the client (Knot: generated config, %s). %s. %d interleaved repetitions of %s per cell (the dns mode took %v).\n\n",
		m.CPU, m.CPUs, m.Kernel, m.Go, m.Date, r.Knot, r.Dnsperf, r.baseline, r.checkNote, r.Reps, r.Duration, (time.Duration(r.TookSec * float64(time.Second))).Round(time.Second))
	b.WriteString("Clients:\n\n")
	for _, c := range r.Commands {
		fmt.Fprintf(&b, "- `%s`\n", c)
	}
	fmt.Fprintf(&b, "\n| client | server | completed queries/s (median) | min-max | vs knot | lost (median / max) | kernel drops (median) | latency (median) |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, cl := range r.clients {
		base, _ := r.cell(r.baseline, cl)
		for _, srv := range r.Servers {
			c, ok := r.cell(srv, cl)
			if !ok {
				continue
			}
			ratio := 0.0
			if base.median > 0 {
				ratio = c.median / base.median
			}
			lat := "avg " + time.Duration(c.latency*float64(time.Second)).Round(time.Microsecond).String()
			what := "dnsperf, " + r.Queries
			if cl == "shardload" {
				lat = "p50 " + time.Duration(c.latency*float64(time.Second)).Round(time.Microsecond).String()
				what = "shardload, one query"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s-%s | %.2fx | %d / %d | %d | %s |\n", what, srv, human(c.median), human(c.min), human(c.max), ratio, c.lost, r.maxLost(srv, cl), c.drops, lat)
		}
	}
	if len(r.ZeroLoss) > 0 {
		fmt.Fprintf(&b, "\nZero-loss check: dnsperf at %d queries/s for %v, the query file.\n\n", r.zeroRate, r.zeroDur)
		b.WriteString("| server | sent | completed | lost | kernel drops |\n|---|---:|---:|---:|---:|\n")
		for _, s := range r.ZeroLoss {
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %d |\n", s.Server, s.Sent, s.Completed, s.Lost, s.Drops)
		}
	}
	b.WriteString("\n")
	for _, cl := range r.clients {
		r.verdicts(&b, cl)
	}
	return b.String()
}

// verdicts writes, for client cl, each server's rate over Knot's and for
// shardd whether it met the goal: at least the rate of the fastest other
// server (Knot, NSD) with no query lost.
func (r *dnsResult) verdicts(b *strings.Builder, cl string) {
	base, _ := r.cell(r.baseline, cl)
	if base.median == 0 {
		return
	}
	best, bestName := base.median, "knot"
	for _, srv := range r.Servers[1:] {
		if c, _ := r.cell(srv, cl); !strings.HasPrefix(srv, "shardd") && c.median > best {
			best, bestName = c.median, srv
		}
	}
	for _, srv := range r.Servers[1:] {
		c, _ := r.cell(srv, cl)
		if !strings.HasPrefix(srv, "shardd") {
			fmt.Fprintf(b, "- %s: %s / knot = %.2fx, %s lost %d at most in a run.\n", cl, srv, c.median/base.median, srv, r.maxLost(srv, cl))
			continue
		}
		verdict := "goal met"
		if c.median < best || r.maxLost(srv, cl) > 0 {
			verdict = "goal not met"
		}
		fmt.Fprintf(b, "- %s: %s / knot = %.2fx, / %s = %.2fx, %s lost %d at most in a run (%s: shardd >= the fastest other server's queries/s with none lost).\n",
			cl, srv, c.median/base.median, bestName, c.median/best, srv, r.maxLost(srv, cl), verdict)
	}
}

// svg charts the dns mode: completed queries/s per client and server (the
// median, whiskers min-max), and the zero-loss check's rate with what it lost.
func (r *dnsResult) svg() string {
	c := chartSpec{
		title: fmt.Sprintf("DNS: shardd --handler dns vs Knot DNS, completed queries/s, %s", r.machine.Date),
		note:  fmt.Sprintf("Bars: median of %s of %s per client and server (whiskers: slowest to fastest). Zero-loss check: dnsperf at a fixed rate, labelled with the queries lost.", plural(r.Reps, "repetition"), r.Duration),
		tick:  human,
	}
	c.series = append(c.series, r.Servers...)
	for _, cl := range r.clients {
		g := chartGroup{label: "shardload, one query"}
		if cl == "dnsperf" {
			g.label = "dnsperf, the query mix (" + filepath.Base(r.Queries) + ")"
		}
		for si, srv := range r.Servers {
			cell, ok := r.cell(srv, cl)
			if !ok {
				continue
			}
			b := chartBar{series: si, value: cell.median, label: human(cell.median),
				tip: fmt.Sprintf("%s, %s: %s queries/s (min-max %s-%s), lost %d at most", srv, cl, human(cell.median), human(cell.min), human(cell.max), r.maxLost(srv, cl))}
			if cell.n > 1 {
				b.lo, b.hi = cell.min, cell.max
			}
			g.bars = append(g.bars, b)
		}
		c.groups = append(c.groups, g)
	}
	if len(r.ZeroLoss) > 0 {
		g := chartGroup{label: fmt.Sprintf("zero-loss check, dnsperf at %s queries/s for %v", human(float64(r.zeroRate)), r.zeroDur)}
		for _, s := range r.ZeroLoss {
			si := slices.Index(r.Servers, s.Server)
			if si < 0 {
				continue
			}
			g.bars = append(g.bars, chartBar{series: si, value: s.QPS, label: fmt.Sprintf("%s, %d lost", human(s.QPS), s.Lost),
				tip: fmt.Sprintf("%s: sent %d, completed %d, lost %d, kernel drops %d", s.Server, s.Sent, s.Completed, s.Lost, s.Drops)})
		}
		c.groups = append(c.groups, g)
	}
	return c.svg()
}
