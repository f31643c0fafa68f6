package main

// The syslog mode: the highest rate of syslog datagrams each server
// ingests into a file with zero loss, shardd --handler syslog beside
// rsyslogd (imudp + omfile, writing JSON records too), same sender
// (shardload one-way with an RFC 5424 payload), side by side in one run.
//
// Each probe starts the server fresh on a free loopback port with an empty
// output file, sends at a fixed rate for --syslog-duration, stops the
// server with SIGTERM (both flush on the way out) and counts the lines in
// the file: zero loss is lines == datagrams the kernel took from shardload.
// The rate doubles from --syslog-start until a probe loses, then is
// bisected --syslog-steps times between the last clean and the first
// lossy rate. Peak memory is the server's VmHWM at the end of each probe.

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type syslogConfig struct {
	payload  string
	dur      time.Duration
	start    float64
	steps    int
	rsyslogd string
	reps     int
	kafka    bool
}

func addSyslogFlags(fs *flag.FlagSet) *syslogConfig {
	c := &syslogConfig{}
	fs.StringVar(&c.payload, "syslog-payload", "testdata/syslog/rfc5424.txt", "syslog: the message shardload sends")
	fs.DurationVar(&c.dur, "syslog-duration", 3*time.Second, "syslog: load time per probe")
	fs.Float64Var(&c.start, "syslog-start", 25000, "syslog: the first rate probed (messages/s); it doubles until a probe loses")
	fs.IntVar(&c.steps, "syslog-steps", 3, "syslog: bisection steps between the last clean and the first lossy rate")
	fs.StringVar(&c.rsyslogd, "syslog-rsyslogd", "rsyslogd", "syslog: the rsyslog daemon")
	fs.BoolVar(&c.kafka, "syslog-kafka", true, "syslog: also probe shardd --sink kafka:// into an in-process kfake cluster (franz-go's fake Kafka)")
	fs.IntVar(&c.reps, "syslog-rounds", 3, "syslog: search rounds (every server probed in lockstep in each); the median round counts")
	return c
}

// syslogServer is one contender: argv writing records to out, listening on port.
type syslogServer struct {
	Name    string
	command func(dir, out string, port int) ([]string, error)
	written func(out string) (uint64, error) // records out holds; nil: countLines
	done    func(out string)                 // after the probe, if not nil: drop what out holds
}

// count is how many records srv wrote to out.
func (s syslogServer) count(out string) (uint64, error) {
	if s.written != nil {
		return s.written(out)
	}
	return countLines(out)
}

// syslogProbe is one fixed-rate run.
type syslogProbe struct {
	Server  string  `json:"server"`
	Rate    float64 `json:"rate"`    // asked
	Offered float64 `json:"offered"` // datagrams/s the kernel took
	Sent    uint64  `json:"sent"`
	Written uint64  `json:"written"`
	PeakRSS uint64  `json:"peak_rss_bytes"`
}

type syslogResult struct {
	Payload   string          `json:"payload"`
	Duration  string          `json:"duration"`
	Probes    []syslogProbe   `json:"probes"`
	Best      []syslogProbe   `json:"best"`   // per server, the median round's highest zero-loss probe
	Rounds    [][]syslogProbe `json:"rounds"` // per server, each round's highest zero-loss probe
	Overload  []syslogProbe   `json:"overload"`
	Rsyslog   string          `json:"rsyslog_version,omitempty"`
	NoOmkafka string          `json:"no_omkafka,omitempty"` // why rsyslog has no Kafka row
	Baseline  string          `json:"baseline"`             // the server the others are compared with (a name prefix)
	GSO       bool            `json:"gso_sender,omitempty"` // shardload sent with UDP GSO (the offload mode's row)
	TookSec   float64         `json:"took_s"`
	ShardsCmd string          `json:"shardd_command"`
	date      string
}

// runSyslogMode searches each server's highest zero-loss rate in rounds,
// then measures it under overload: shardd beside rsyslogd (the baseline).
func runSyslogMode(c *syslogConfig, shardd, shardload string, prog *progress) (*syslogResult, error) {
	if _, err := exec.LookPath(c.rsyslogd); err != nil {
		return nil, fmt.Errorf("%s not found (apt-get install rsyslog)", c.rsyslogd)
	}
	servers := syslogServers(c, shardd)
	res := &syslogResult{Payload: c.payload, Duration: c.dur.String(), Rsyslog: rsyslogVersion(c.rsyslogd), date: readMachine().Date}
	if c.kafka {
		k, err := newKafkaBench()
		if err != nil {
			return nil, fmt.Errorf("kfake: %w", err)
		}
		defer k.close()
		servers = append(servers, k.server(shardd))
		if rs, ok := k.rsyslog(c.rsyslogd); ok {
			servers = append(servers, rs)
		} else {
			res.NoOmkafka = "rsyslog's omkafka module is not installed (apt-get install rsyslog-kafka): no rsyslog row into Kafka"
		}
	}
	res.Baseline = "rsyslogd"
	return res, searchSyslog(c, servers, shardload, prog, res)
}

// searchSyslog runs the search of the syslog mode over servers, into res
// (whose Baseline and GSO say what it compares and how shardload sends).
func searchSyslog(c *syslogConfig, servers []syslogServer, shardload string, prog *progress, res *syslogResult) error {
	start := time.Now()
	res.Payload, res.Duration, res.date = c.payload, c.dur.String(), readMachine().Date
	res.ShardsCmd = strings.Join(servers[0].command2(), " ")
	m := &syslogMode{c: c, servers: servers, shardload: shardload, prog: prog, res: res, planned: c.planned(len(servers))}
	for range servers {
		m.guess = append(m.guess, doublingGuess)
	}
	perServer := make([][]syslogProbe, len(servers))
	for round := 1; round <= c.reps; round++ {
		bests, err := m.round(round)
		if err != nil {
			return err
		}
		for i := range servers {
			perServer[i] = append(perServer[i], bests[i])
		}
	}
	for i, srv := range servers {
		bests := perServer[i]
		sort.Slice(bests, func(a, b int) bool { return bests[a].Offered < bests[b].Offered })
		res.Best = append(res.Best, bests[len(bests)/2])
		res.Rounds = append(res.Rounds, bests)
		// Memory under overload: as fast as the sender goes.
		prog.start("syslog", fmt.Sprintf("syslog overload, %s", srv.Name), c.dur)
		p, err := syslogRun(srv, shardload, c, 0, res.GSO)
		if err != nil {
			prog.end("failed")
			return fmt.Errorf("%s overload: %w", srv.Name, err)
		}
		res.Overload = append(res.Overload, p)
		prog.end("offered %.0f/s, sent %d, written %d, peak RSS %.1f MiB", p.Offered, p.Sent, p.Written, float64(p.PeakRSS)/(1<<20))
	}
	res.TookSec = time.Since(start).Seconds()
	return nil
}

// syslogServers are the contenders: shardd with a shard per CPU and
// rsyslogd with an imudp worker per CPU.
func syslogServers(c *syslogConfig, shardd string) []syslogServer {
	ncpu := runtime.GOMAXPROCS(0)
	return []syslogServer{
		{Name: fmt.Sprintf("shardd %d shards", ncpu), command: func(dir, out string, port int) ([]string, error) {
			return []string{shardd, "--handler", "syslog", "--sink", out, "--log-level", "warn", fmt.Sprintf("127.0.0.1:%d", port)}, nil
		}},
		{Name: fmt.Sprintf("rsyslogd imudp (%d threads)", ncpu), command: func(dir, out string, port int) ([]string, error) {
			conf := filepath.Join(dir, "rsyslog.conf")
			err := os.WriteFile(conf, []byte(rsyslogConf(dir, out, port, ncpu)), 0o644)
			return []string{c.rsyslogd, "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid")}, err
		}},
	}
}

// doublingGuess is how many probes a search is guessed to take before a
// probe loses (25k, 50k, ... 400k/s), until a round has shown it.
const doublingGuess = 5

// servers is the number of servers the syslog mode compares.
func (c *syslogConfig) servers() int {
	if c.kafka {
		return 4
	}
	return 2
}

// planned is the number of probes of a search over n servers, for the
// progress line: per round and server a search (doublingGuess probes and
// the bisection), then an overload probe per server.
func (c *syslogConfig) planned(n int) int {
	return c.reps*n*(doublingGuess+c.steps) + n
}

// syslogMode is the syslog mode's search under way.
type syslogMode struct {
	c         *syslogConfig
	servers   []syslogServer
	shardload string
	prog      *progress
	res       *syslogResult
	guess     []int // per server, the probes its last search took before a loss
	planned   int   // the probes the progress line counts on
}

// round searches every server in lockstep (a probe of each in turn at
// each step), so that a noisy spell of this shared machine hits
// all alike; it returns each server's highest zero-loss probe.
func (m *syslogMode) round(round int) ([]syslogProbe, error) {
	searches := make([]*rateSearch, len(m.servers))
	for i := range m.servers {
		searches[i] = &rateSearch{rate: m.c.start, steps: m.c.steps}
	}
	for active := true; active; {
		active = false
		for i, srv := range m.servers {
			sr := searches[i]
			if sr.done() {
				continue
			}
			active = true
			m.prog.start("syslog", fmt.Sprintf("syslog round %d/%d, %s at %.0f/s", round, m.c.reps, srv.Name, sr.rate), m.c.dur)
			p, err := syslogRun(srv, m.shardload, m.c, sr.rate, m.res.GSO)
			if err != nil {
				m.prog.end("failed")
				return nil, fmt.Errorf("%s at %.0f/s: %w", srv.Name, sr.rate, err)
			}
			m.res.Probes = append(m.res.Probes, p)
			ok := p.Written == p.Sent
			sr.record(p, ok)
			m.replan(round, searches)
			m.prog.end("offered %.0f/s, sent %d, written %d, peak RSS %.1f MiB, %s",
				p.Offered, p.Sent, p.Written, float64(p.PeakRSS)/(1<<20), map[bool]string{true: "ok", false: "LOSS"}[ok])
		}
	}
	bests := make([]syslogProbe, len(m.servers))
	for i, sr := range searches {
		bests[i] = syslogProbe{Server: m.servers[i].Name}
		if sr.best != nil {
			bests[i] = *sr.best
		}
		m.guess[i] = max(sr.doublings, 1)
	}
	return bests, nil
}

// replan tells the progress line how many probes are still to come, from
// the searches under way and the guesses for the rounds after this one.
func (m *syslogMode) replan(round int, searches []*rateSearch) {
	left := len(m.servers) // the overload probes
	for i, sr := range searches {
		left += sr.left(m.guess[i]) + (m.c.reps-round)*(m.guess[i]+m.c.steps)
	}
	total := len(m.res.Probes) + left // the current probe is among res.Probes
	m.prog.plan("syslog", total-m.planned, m.c.dur)
	m.planned = total
}

// rateSearch finds one server's highest zero-loss rate: the rate doubles
// until a probe loses, then is bisected steps times between the last clean
// and the first lossy rate.
type rateSearch struct {
	rate, good, bad float64
	steps           int
	doublings       int // probes before the bisection (the first lossy one included)
	best            *syslogProbe
}

func (r *rateSearch) done() bool { return r.rate == 0 }

// left estimates the probes still to come, the next one included, when
// the search is guessed to take guess probes before one loses.
func (r *rateSearch) left(guess int) int {
	switch {
	case r.done():
		return 0
	case r.bad == 0:
		return max(guess-r.doublings, 1) + r.steps
	}
	return r.steps + 1
}

func (r *rateSearch) record(p syslogProbe, ok bool) {
	if r.bad == 0 {
		r.doublings++
	}
	if ok && (r.best == nil || p.Offered > r.best.Offered) {
		b := p
		r.best = &b
	}
	switch {
	case r.bad == 0 && ok && r.rate > 5e6:
		r.rate = 0
	case r.bad == 0 && ok:
		r.good, r.rate = r.rate, r.rate*2
	default:
		if ok {
			r.good = r.rate
		} else {
			r.bad = r.rate
		}
		if r.steps == 0 {
			r.rate = 0
			return
		}
		r.steps--
		r.rate = (r.good + r.bad) / 2
	}
}

// command2 shows the shardd command line of the table, with placeholders.
func (s syslogServer) command2() []string {
	argv, _ := s.command("DIR", "FILE", 5514)
	if len(argv) > 0 {
		argv[0] = filepath.Base(argv[0])
	}
	return argv
}

// rsyslogConf is rsyslog tuned for the same job: imudp with a worker
// thread per CPU and the same receive buffer as shardd, JSON records to a
// file with asynchronous, buffered writes.
func rsyslogConf(dir, out string, port, threads int) string {
	return rsyslogInput(dir, port, threads) + fmt.Sprintf(`ruleset(name="out" queue.type="FixedArray" queue.size="100000") {
  action(type="omfile" file=%q template="json" asyncWriting="on" ioBufferSize="256k" flushOnTXEnd="off")
}
`, out)
}

// rsyslogInput is the part of rsyslog's configuration every sink shares:
// imudp into the ruleset "out" (which the sink's part defines), and the
// JSON record template.
func rsyslogInput(dir string, port, threads int) string {
	return fmt.Sprintf(`global(workDirectory=%q)
module(load="imudp" threads="%d")
input(type="imudp" address="127.0.0.1" port="%d" rcvbufSize="4m" ruleset="out")
template(name="json" type="list" option.jsonf="on") {
  property(outname="received" name="timegenerated" dateFormat="rfc3339" format="jsonf")
  property(outname="from" name="fromhost-ip" format="jsonf")
  property(outname="priority" name="pri" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="structured_data" name="structured-data" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}
`, dir, threads, port)
}

// syslogRun starts srv, sends at rate for c.dur (0: as fast as possible;
// gso: with UDP GSO sends), stops it and counts the records it wrote.
func syslogRun(srv syslogServer, shardload string, c *syslogConfig, rate float64, gso bool) (syslogProbe, error) {
	p := syslogProbe{Server: srv.Name, Rate: rate}
	port, dir, err := portAndDir("shardbench-syslog-")
	if err != nil {
		return p, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "out.ndjson")
	if srv.done != nil {
		defer srv.done(out)
	}
	argv, err := srv.command(dir, out, port)
	if err != nil {
		return p, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	serr, err := startServer(cmd, true)
	if err != nil {
		return p, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = signalGroup(cmd.Process.Pid, syscall.SIGKILL) // the group we started
			<-exited
		}
	}()
	if err := waitBound("udp", port, 10*time.Second); err != nil {
		return p, fmt.Errorf("server did not bind 127.0.0.1:%d: %v; output: %s", port, err, serr.String())
	}
	time.Sleep(200 * time.Millisecond) // rsyslog binds before its workers run
	args := syslogLoad(c, port, rate, gso)
	var sum struct {
		Sent        uint64  `json:"sent"`
		DurationSec float64 `json:"duration_s"`
	}
	if err := runShardload(shardload, c.dur, args, &sum); err != nil {
		return p, err
	}
	p.Sent, p.Offered = sum.Sent, float64(sum.Sent)/sum.DurationSec
	// Let the server read its socket queues and write, until its output
	// stops growing (or has everything), then stop it: all flush on TERM.
	if _, err := waitDrained(port, 5*time.Second); err != nil {
		return p, err
	}
	last, stable := uint64(0), 0
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && stable < 5; {
		n, _ := srv.count(out)
		if n == p.Sent {
			break
		}
		if n == last {
			stable++
		} else {
			stable = 0
		}
		last = n
		time.Sleep(100 * time.Millisecond)
	}
	p.PeakRSS = peakRSS(cmd.Process.Pid)
	_ = signalProcess(cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		return p, errors.New("the server did not exit on SIGTERM")
	}
	p.Written, err = srv.count(out)
	return p, err
}

// syslogLoad is shardload's arguments for one probe.
func syslogLoad(c *syslogConfig, port int, rate float64, gso bool) []string {
	args := []string{"--json", "--progress=false", "--mode", "oneway", "--senders", "1", "--wait", "0s",
		"--payload", c.payload, "--duration", c.dur.String(), "--rate", strconv.FormatFloat(rate, 'f', 0, 64),
		fmt.Sprintf("127.0.0.1:%d", port)}
	if gso {
		args = append([]string{"--gso", "on"}, args...)
	}
	return args
}

func countLines(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return 0, nil
		}
		return 0, err
	}
	defer f.Close()
	var n uint64
	r := bufio.NewReaderSize(f, 1<<20)
	buf := make([]byte, 1<<20)
	for {
		k, err := r.Read(buf)
		n += uint64(bytes.Count(buf[:k], []byte{'\n'}))
		if err != nil {
			return n, nil
		}
	}
}

// peakRSS is VmHWM of a process, in bytes.
func peakRSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (r *syslogResult) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### syslog: zero-loss ingestion to a file (and to Kafka)\n\n")
	fmt.Fprintf(&b, "shardload one-way, 1 sender thread, 64 flows, payload `%s`, %s per probe; rate doubled then bisected; a probe is clean when the file has one line per datagram sent (after SIGTERM), or for Kafka when the topic holds one record per datagram (kfake, franz-go's in-process fake broker, run by shardbench on loopback and sharing the CPUs: a local stand-in, not a real broker's figure; shardd's franz-go client and rsyslog's omkafka (librdkafka) set alike: key = sender address, lz4, linger 10ms, acks all, idempotent). %d rounds, all servers probed in lockstep in each; the median round counts. %s. Took %.0fs.\n\n", r.Payload, r.Duration, r.rounds(), r.Rsyslog, r.TookSec)
	b.WriteString(r.table())
	if r.NoOmkafka != "" {
		fmt.Fprintf(&b, "\n%s.\n", r.NoOmkafka)
	}
	return b.String()
}

// offloadMarkdown is the offload mode's syslog row: shardd --gro on
// against off, under a GSO sender.
func (r *syslogResult) offloadMarkdown() string {
	return fmt.Sprintf("\n#### syslog into a file, GSO sender: shardd --gro on vs off\n\nAs the syslog mode (zero loss: one line in the file per datagram sent), shardload sending with UDP GSO (--gso on, 64 flows, 1 sender thread), payload `%s`, %s per probe, %d rounds in lockstep, the median round counts. Took %.0fs.\n\n", r.Payload, r.Duration, r.rounds(), r.TookSec) + r.table()
}

// table is the servers' rows, with their ratio over the baseline's rate.
func (r *syslogResult) table() string {
	var b strings.Builder
	// Each row is compared with the baseline writing to the same kind of sink.
	base, vs := map[bool]float64{}, r.Baseline
	for _, p := range r.Best {
		if strings.HasPrefix(p.Server, r.Baseline) {
			base[isKafkaRow(p.Server)] = p.Offered
		}
		if isKafkaRow(p.Server) {
			vs = r.Baseline + " (same sink)"
		}
	}
	fmt.Fprintf(&b, "| server | highest zero-loss rate (msgs/s), median round | rounds | vs %s | peak RSS there | overload: offered/s | written | peak RSS |\n|---|---:|---|---:|---:|---:|---:|---:|\n", vs)
	for i, p := range r.Best {
		ratio := "-"
		if b := base[isKafkaRow(p.Server)]; b > 0 {
			ratio = fmt.Sprintf("%.2fx", p.Offered/b)
		}
		o := r.Overload[i]
		var rounds []string
		for _, q := range r.Rounds[i] {
			rounds = append(rounds, human(q.Offered))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.1f MiB | %s | %d of %d | %.1f MiB |\n", p.Server, human(p.Offered), strings.Join(rounds, ", "), ratio, float64(p.PeakRSS)/(1<<20),
			human(o.Offered), o.Written, o.Sent, float64(o.PeakRSS)/(1<<20))
	}
	if r.NoOmkafka != "" {
		fmt.Fprintf(&b, "\n%s.\n", r.NoOmkafka)
	}
	return b.String()
}

// isKafkaRow tells the servers writing to Kafka from those writing a file.
func isKafkaRow(server string) bool { return strings.HasSuffix(server, "(kfake)") }

func rsyslogVersion(rsyslogd string) string {
	out, _ := exec.Command(rsyslogd, "-v").Output()
	line, _, _ := strings.Cut(string(out), "\n")
	line, _, _ = strings.Cut(line, " compiled with")
	return strings.Join(strings.Fields(line), " ")
}

// rounds is the number of search rounds that ran.
func (r *syslogResult) rounds() int {
	if len(r.Rounds) == 0 {
		return 0
	}
	return len(r.Rounds[0])
}

// svg charts the syslog mode: each server's highest zero-loss rate (the
// median round, whiskers over the rounds) and what it wrote per second
// under overload.
func (r *syslogResult) svg() string {
	c := chartSpec{
		title: fmt.Sprintf("syslog: messages/s written to a file (and to Kafka), shardd vs %s, %s", r.Rsyslog, r.date),
		note: fmt.Sprintf("Zero-loss: the highest rate with one line in the file per datagram sent (rate doubled, then bisected; probes of %s), median of %s, whiskers over the rounds. Overload: records written per second of sending as fast as one sender goes.",
			r.Duration, plural(r.rounds(), "round")),
		tick: human,
	}
	best := chartGroup{label: "highest zero-loss rate"}
	over := chartGroup{label: "overload: records written/s"}
	// The baseline first (in grey, as the other charts' baselines).
	order := make([]int, 0, len(r.Best))
	for i, p := range r.Best {
		if strings.HasPrefix(p.Server, r.Baseline) {
			order = append([]int{i}, order...)
		} else {
			order = append(order, i)
		}
	}
	for si, i := range order {
		p := r.Best[i]
		c.series = append(c.series, p.Server)
		b := chartBar{series: si, value: p.Offered, label: human(p.Offered) + "/s", tip: fmt.Sprintf("%s: %s/s with zero loss, peak RSS %.1f MiB", p.Server, human(p.Offered), float64(p.PeakRSS)/(1<<20))}
		if i < len(r.Rounds) && len(r.Rounds[i]) > 1 {
			b.lo, b.hi = math.Inf(1), 0
			for _, q := range r.Rounds[i] {
				b.lo, b.hi = math.Min(b.lo, q.Offered), math.Max(b.hi, q.Offered)
			}
		}
		best.bars = append(best.bars, b)
		if i < len(r.Overload) && r.Overload[i].Offered > 0 && r.Overload[i].Sent > 0 {
			o := r.Overload[i]
			rate := float64(o.Written) / (float64(o.Sent) / o.Offered)
			over.bars = append(over.bars, chartBar{series: si, value: rate, label: human(rate) + "/s",
				tip: fmt.Sprintf("%s: wrote %d of %d sent at %s/s, peak RSS %.1f MiB", o.Server, o.Written, o.Sent, human(o.Offered), float64(o.PeakRSS)/(1<<20))})
		}
	}
	c.groups = append(c.groups, best, over)
	return c.svg()
}
