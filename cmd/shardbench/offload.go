package main

import (
	"fmt"
	"time"
)

// The offload mode: shardd against itself with UDP offloads on and off
// (issue 18). discard under a GSO sender (shardload --gso on, equal-size
// datagrams): --gro on against --gro off; echo under a GSO sender with GRO
// on: --gso on (a batch's equal-size replies to one client in one send)
// against --gso off. It reuses the UDP loads' measure, interleaving and
// report; the "off" variant of each load is the baseline of its ratios.
// Its syslog row is the syslog mode's zero-loss search (syslog.go) over
// shardd --handler syslog into a file, --gro off against on, under a GSO
// sender.

// offloadResult is the offload mode in results.json.
type offloadResult struct {
	Samples []sample      `json:"samples"`
	Syslog  *syslogResult `json:"syslog,omitempty"` // the syslog row: zero-loss ingest into a file
	rep     *report
}

// offloadScenarios are the offload mode's loads at one datagram size.
func offloadScenarios(size int) []scenario {
	return []scenario{{Mode: "discard", Size: size, GSO: true}, {Mode: "echo", Size: size, GSO: true}}
}

// offloadServers are the shardd variants of the offload mode, each in the
// one load it is compared in.
func offloadServers(bin func(string) string) []server {
	shardd := func(mode string, baseline bool, flags ...string) server {
		name := "shardd"
		for _, f := range flags {
			name += " " + f
		}
		return server{Name: name, Baseline: baseline, only: mode, command: func(port int, h, proto string) []string {
			argv := append([]string{bin("shardd"), "--proto", proto}, flags...)
			return append(argv, "--handler", h, "--log-level", "warn", fmt.Sprintf("127.0.0.1:%d", port))
		}}
	}
	return []server{
		shardd("discard", true, "--gro", "off"),
		shardd("discard", false, "--gro", "on"),
		shardd("echo", true, "--gro", "on", "--gso", "off"),
		shardd("echo", false, "--gro", "on", "--gso", "on"),
	}
}

// offloadRuns is the number of runs the offload mode makes.
func offloadRuns(scenarios []scenario, reps int) int {
	n := 0
	for _, sc := range scenarios {
		for _, srv := range offloadServers(func(string) string { return "" }) {
			if srv.runs(sc) {
				n += reps
			}
		}
	}
	return n
}

// runOffloadMode measures the offload variants, repetitions interleaved.
func runOffloadMode(o *options, scenarios []scenario) (*offloadResult, error) {
	servers := offloadServers(o.binPath)
	start := time.Now()
	samples, err := runScenarios(servers, scenarios, o.reps, o.dur, o.binPath("shardload"), o.prog)
	if err != nil {
		return nil, err
	}
	rep := buildReport(servers, scenarios, samples, o.reps, o.dur, time.Since(start))
	rep.vs = "offload off"
	rep.intro = "UDP offloads, shardd against itself: discard: shardload one-way with one GSO sender per CPU (--gso on, equal-size datagrams), shardd --gro on against off; echo: one GSO sender thread, 16 requests in flight per flow, shardd with GRO on, replies with --gso on against off. The ratio is over the variant with the offload off."
	rep.title = "UDP offloads: shardd --gro and --gso on vs off on loopback"
	r := &offloadResult{Samples: samples, rep: rep, Syslog: &syslogResult{Baseline: "shardd --gro off", GSO: true}}
	if err := searchSyslog(o.syslog, offloadSyslogServers(o.binPath("shardd")), o.binPath("shardload"), o.prog, r.Syslog); err != nil {
		return nil, fmt.Errorf("syslog row: %w", err)
	}
	return r, nil
}

// offloadSyslogServers are the syslog row's servers: shardd --handler
// syslog into a file with GRO off (the baseline) and on.
func offloadSyslogServers(shardd string) []syslogServer {
	srv := func(gro string) syslogServer {
		return syslogServer{Name: "shardd --gro " + gro, command: func(dir, out string, port int) ([]string, error) {
			return []string{shardd, "--handler", "syslog", "--sink", out, "--gro", gro, "--log-level", "warn", fmt.Sprintf("127.0.0.1:%d", port)}, nil
		}}
	}
	return []syslogServer{srv("off"), srv("on")}
}
