// Command shardload is a UDP load generator for shardd and any UDP server:
// batched sendmmsg (or UDP GSO) from one sender per CPU over many source
// ports, one-way or echo with RTT percentiles, and per-shard accounting read
// from shardd's /metrics.
//
//	shardload [flags] ADDR
//
// Exit codes: 0 done; 1 runtime failure (the target refused or is
// unreachable, every send failed, --metrics failed); 2 usage error (a bad
// flag, or an address no server can have: multicast, broadcast, link-local
// without its interface).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/shardd/shardd/cmd/internal/cli"
)

type config struct {
	proto      string
	target     netip.AddrPort
	duration   time.Duration
	rate       float64
	flows      int
	size       int
	payloadArg string
	mode       string
	window     int
	timeout    time.Duration
	wait       time.Duration
	senders    int
	gsoArg     string
	json       bool
	metricsURL string
	progress   bool

	payload []byte
	kind    payloadKind
	gso     bool
	burst   int // datagrams per send call
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

func main() {
	os.Exit(mainCode(os.Args[1:], os.Stdout, os.Stderr))
}

func mainCode(args []string, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "shardload: %v\n", err)
		var ue *usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	cfg, err := parseFlags(args, stdout)
	if cfg == nil && err == nil {
		return 0 // --help
	}
	if err != nil {
		return fail(err)
	}
	sum, err := execute(cfg, stderr)
	if err != nil {
		return fail(err)
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		_ = enc.Encode(sum)
	} else {
		sum.print(stdout)
	}
	return 0
}

func parseFlags(args []string, stdout io.Writer) (*config, error) {
	cfg := &config{}
	fs := cfg.flagSet()
	pos, err := cli.ParseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, "Usage: shardload [flags] ADDR\n\nSends datagrams (or TCP messages) to ADDR and reports what arrived.\nExit codes: 0 done; 1 runtime failure (the target refused or is unreachable,\nevery send failed, --metrics failed); 2 usage error (a bad flag or address).\n\nFlags:")
		cli.PrintFlags(stdout, fs)
		return nil, nil
	}
	if err != nil {
		return nil, usagef("%s", cli.FlagError(fs, err, "shardload"))
	}
	if len(pos) != 1 {
		return nil, usagef("want exactly one target ADDR, e.g. shardload 127.0.0.1:5353")
	}
	if cfg.proto != "udp" && cfg.proto != "tcp" {
		return nil, usagef("--proto %s: want udp or tcp", cfg.proto)
	}
	if cfg.target, err = netip.ParseAddrPort(pos[0]); err != nil || cfg.target.Port() == 0 {
		return nil, usagef("target %q: want IP:PORT with a port from 1 to 65535, e.g. 127.0.0.1:5353 or [::1]:5353", pos[0])
	}
	if err := checkTarget(cfg.target); err != nil {
		return nil, err
	}
	if err := cfg.checkRanges(); err != nil {
		return nil, err
	}
	if err := cfg.makePayload(); err != nil {
		return nil, err
	}
	cfg.senders = min(cfg.senders, cfg.flows)
	return cfg, nil
}

// flagSet binds the flags to cfg's fields with their defaults.
func (cfg *config) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("shardload", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.proto, "proto", "udp", "transport: udp, or tcp (each flow one connection; DNS payloads get 2-byte length framing)")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "how long to send")
	fs.Float64Var(&cfg.rate, "rate", 0, "datagrams per second over all senders; 0 = as fast as possible")
	fs.IntVar(&cfg.flows, "flows", 64, "client sockets (source ports), so the server's 4-tuple hash has flows to spread")
	cfg.size = 64
	fs.Func("size", "datagram size with generated payload, in bytes or with K (at least 16 in echo mode) (default 64)", func(s string) error {
		n, err := cli.ParseSize(s, 1<<31-1)
		cfg.size = int(n)
		return err
	})
	fs.StringVar(&cfg.payloadArg, "payload", "", "send this file's bytes instead (a DNS query from testdata/ gets its ID used as sequence)")
	fs.StringVar(&cfg.mode, "mode", "oneway", "oneway (count what was sent) or echo (match replies, measure RTT)")
	fs.IntVar(&cfg.window, "window", 16, "echo: requests in flight per flow before the flow waits for replies; 0 = no limit")
	fs.DurationVar(&cfg.timeout, "timeout", time.Second, "echo: a flow with a full window and no reply for this long gives up on its requests in flight (they count as lost)")
	fs.DurationVar(&cfg.wait, "wait", time.Second, "after sending, wait this long at most for replies (echo) and for the server to count (--metrics)")
	fs.IntVar(&cfg.senders, "senders", runtime.GOMAXPROCS(0), "sender threads; default one per CPU the process may use")
	fs.StringVar(&cfg.gsoArg, "gso", "auto", "UDP GSO (UDP_SEGMENT): auto, on or off")
	fs.BoolVar(&cfg.json, "json", false, "print the summary as one JSON object")
	fs.StringVar(&cfg.metricsURL, "metrics", "", "shardd's /metrics URL: scrape before and after for per-shard counts and kernel drops")
	fs.BoolVar(&cfg.progress, "progress", true, "print progress to stderr once a second")
	return fs
}

// checkRanges checks the numeric flags and the word choices.
func (cfg *config) checkRanges() error {
	switch {
	case cfg.rate < 0:
		return usagef("--rate %v: must be 0 (as fast as possible) or more", cfg.rate)
	case cfg.duration <= 0:
		return usagef("--duration %v: must be positive", cfg.duration)
	case cfg.flows < 1 || cfg.flows > 10000:
		return usagef("--flows %d: must be between 1 and 10000", cfg.flows)
	case cfg.senders < 1:
		return usagef("--senders %d: must be at least 1", cfg.senders)
	case cfg.mode != "oneway" && cfg.mode != "echo":
		return usagef("--mode %s: want oneway or echo", cfg.mode)
	case cfg.window < 0:
		return usagef("--window %d: must be 0 or more", cfg.window)
	case cfg.timeout <= 0:
		return usagef("--timeout %v: must be positive", cfg.timeout)
	case cfg.gsoArg != "auto" && cfg.gsoArg != "on" && cfg.gsoArg != "off":
		return usagef("--gso %s: want auto, on or off", cfg.gsoArg)
	}
	return nil
}

// makePayload reads --payload, or generates --size bytes.
func (cfg *config) makePayload() error {
	if cfg.payloadArg != "" {
		var err error
		if cfg.payload, err = os.ReadFile(cfg.payloadArg); err != nil {
			return usagef("--payload: %v", err)
		}
		if len(cfg.payload) == 0 || len(cfg.payload) > 65507 {
			return usagef("--payload %s: %d bytes; a UDP datagram carries 1 to 65507", cfg.payloadArg, len(cfg.payload))
		}
		cfg.kind = classifyPayload(cfg.payload)
	} else {
		if cfg.size < 1 || cfg.size > 65507 {
			return usagef("--size %d: must be between 1 and 65507 (the largest UDP payload over IPv4)", cfg.size)
		}
		if cfg.mode == "echo" && cfg.size < stampLen {
			return usagef("--size %d: echo mode needs at least %d bytes for a sequence number and send time (or use --payload FILE)", cfg.size, stampLen)
		}
		cfg.payload = make([]byte, cfg.size)
		for i := range cfg.payload {
			cfg.payload[i] = 'a' + byte(i%26)
		}
		cfg.kind = filler
	}
	return nil
}

// execute runs the load and returns its summary.
func execute(cfg *config, stderr io.Writer) (*summary, error) {
	if err := cfg.chooseGSO(); err != nil {
		return nil, err
	}
	r, err := openRun(cfg)
	if err != nil {
		return nil, err
	}
	defer r.close()

	var before serverStats
	if cfg.metricsURL != "" {
		if before, err = scrapeServer(cfg.metricsURL); err != nil {
			return nil, metricsError(cfg.metricsURL, err)
		}
	}

	// SIGINT ends the sending early; the summary still prints.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)

	r.start = time.Now()
	var rwg sync.WaitGroup
	sendersDone := r.startLoops(r.start.Add(cfg.duration), &rwg)
	p := progress{r: r, before: before, out: stderr, lastT: r.start}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
sending:
	for {
		select {
		case <-sendersDone:
			break sending
		case <-sig:
			r.stopped.Store(true)
		case now := <-tick.C:
			p.tick(now)
		}
	}
	return r.finish(before, time.Since(r.start), &rwg)
}

// chooseGSO decides whether the run sends UDP GSO super-datagrams
// (--gso) and how many datagrams go in one send call. GSO needs equal-size
// datagrams (ours are) and caps a send at 64 segments and 64 KiB.
func (cfg *config) chooseGSO() error {
	size := len(cfg.payload)
	cfg.burst = 64
	switch {
	case cfg.proto == "tcp":
		cfg.gso = false // a stream has no datagrams to segment
	case cfg.gsoArg == "off":
		cfg.gso = false
	case cfg.gsoArg == "on":
		if udpMaxSegments < 2 || size > 65507/2 {
			return usagef("--gso on: needs Linux and datagrams of at most %d bytes (two must fit one 64 KiB send); this run has %d", 65507/2, size)
		}
		cfg.gso = true
	default:
		cfg.gso = udpMaxSegments > 1 && size <= 65507/2
	}
	if cfg.gso {
		cfg.burst = min(udpMaxSegments, 65507/size)
	}
	return nil
}

// openRun opens the flows, without GSO when --gso auto and the kernel
// refuses it.
func openRun(cfg *config) (*run, error) {
	r, err := newRun(cfg)
	if err != nil && cfg.gso && cfg.gsoArg == "auto" {
		cfg.gso, cfg.burst = false, 64
		r, err = newRun(cfg)
	}
	if err != nil {
		return nil, targetError(cfg.target, err)
	}
	return r, nil
}

// checkTarget refuses an address that cannot name one server (a usage
// error, exit 2). Whether the server is there is for the run to find out:
// a refused or unreachable target is a runtime failure (exit 1).
func checkTarget(t netip.AddrPort) error {
	a := t.Addr()
	switch {
	case a.IsMulticast():
		return usagef("target %v: a multicast address; want the server's unicast address, e.g. 127.0.0.1:5353", t)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return usagef("target %v: the broadcast address; want the server's unicast address, e.g. 127.0.0.1:5353", t)
	case a.Is6() && a.IsLinkLocalUnicast() && a.Zone() == "":
		return usagef("target %v: a link-local address needs its interface, e.g. [fe80::1%%eth0]:5353", t)
	}
	return nil
}

// targetError says why the flows could not open: a runtime failure (exit
// 1), since the network, not the command line, decided it.
func targetError(target netip.AddrPort, err error) error {
	switch {
	case errors.Is(err, errRefused):
		return fmt.Errorf("target %v: %w: is the server running?", target, err)
	case isUnreachable(err):
		return fmt.Errorf("target %v is unreachable from this host: %w", target, err)
	}
	return err
}

// metricsError is a failed scrape of --metrics, with a hint when nothing
// listens there.
func metricsError(url string, err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("--metrics %s: %w (is shardd serving its metrics there? e.g. shardd --metrics 127.0.0.1:9153 ...)", url, err)
	}
	return fmt.Errorf("--metrics %s: %w", url, err)
}

// startLoops starts a receiver per flow (echo; rwg waits for them) and the
// senders, and returns a channel closed when every sender has stopped.
func (r *run) startLoops(deadline time.Time, rwg *sync.WaitGroup) <-chan struct{} {
	if r.cfg.mode == "echo" {
		for _, f := range r.flows {
			rwg.Add(1)
			go r.recvLoop(f, rwg)
		}
	}
	var swg sync.WaitGroup
	for i := 0; i < r.cfg.senders; i++ {
		swg.Add(1)
		go func() { defer swg.Done(); r.sendLoop(i, deadline) }()
	}
	sendersDone := make(chan struct{})
	go func() { swg.Wait(); close(sendersDone) }()
	return sendersDone
}

// progress prints a line to out once a second while the run sends
// (--progress): the send rate and, when known, the receive rate and loss.
type progress struct {
	r                  *run
	before             serverStats
	out                io.Writer
	lastSent, lastRecv uint64
	lastT              time.Time
}

func (p *progress) tick(now time.Time) {
	cfg := p.r.cfg
	sent, recv := p.r.totals()
	live := cfg.mode == "echo"
	if cfg.mode == "oneway" && cfg.metricsURL != "" && cfg.progress {
		// One-way: what arrived is the server's count, scraped live.
		if now, err := scrapeServer(cfg.metricsURL); err == nil {
			recv, live = diffServer(p.before, now).Received, true
		}
	}
	if cfg.progress {
		secs := now.Sub(p.lastT).Seconds()
		line := fmt.Sprintf("[%5.1fs] sent %9.0f/s", now.Sub(p.r.start).Seconds(), float64(sent-p.lastSent)/secs)
		if live {
			loss := 0.0
			if sent > 0 {
				loss = 100 * float64(sent-min(recv, sent)) / float64(sent)
			}
			line += fmt.Sprintf("  recv %9.0f/s  in flight or lost %.2f%%", float64(recv-min(p.lastRecv, recv))/secs, loss)
		}
		fmt.Fprintln(p.out, line)
	}
	p.lastSent, p.lastRecv, p.lastT = sent, recv, now
}

// finish waits (--wait) for replies and the server's counters to catch up,
// closes the flows, and returns the summary, or an error when nothing got
// through.
func (r *run) finish(before serverStats, elapsed time.Duration, rwg *sync.WaitGroup) (*summary, error) {
	cfg := r.cfg
	waitUntil := time.Now().Add(cfg.wait)
	for cfg.mode == "echo" && time.Now().Before(waitUntil) {
		if sent, recv := r.totals(); recv >= sent {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	sum := newSummary(cfg, r, elapsed)
	if cfg.metricsURL != "" {
		after, err := waitServer(cfg, before, sum.Sent, waitUntil)
		if err != nil {
			return nil, metricsError(cfg.metricsURL, err)
		}
		d := diffServer(before, after)
		sum.Server = &d
		// Over UDP the server counts datagrams; over TCP it counts reads
		// of a raw stream, which are not our messages.
		if cfg.mode == "oneway" && cfg.proto == "udp" {
			sum.setReceived(d.Received)
		}
	}
	r.close()
	rwg.Wait()
	sum.addRTT(r)
	sum.addGRO(r)
	if sum.Sent == 0 && sum.SendErrors > 0 {
		return sum, fmt.Errorf("every send failed: %v", *r.firstErr.Load())
	}
	for _, f := range r.flows {
		if f.refused.Load() {
			return sum, fmt.Errorf("target %v refused datagrams (ICMP port unreachable): is the server running?", cfg.target)
		}
	}
	return sum, nil
}

// waitServer scrapes until the server has counted every datagram sent (or
// the wait is over) and returns the last scrape.
func waitServer(cfg *config, before serverStats, sent uint64, until time.Time) (serverStats, error) {
	for {
		after, err := scrapeServer(cfg.metricsURL)
		if err != nil {
			return after, err
		}
		d := diffServer(before, after)
		if d.Received+d.KernelDrops >= sent || time.Now().After(until) {
			return after, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isUnreachable(err error) bool {
	return errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EINVAL)
}
