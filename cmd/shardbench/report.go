package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"
)

type machineInfo struct {
	CPU    string `json:"cpu"`
	CPUs   int    `json:"cpus"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	Date   string `json:"date"`
}

func readMachine() machineInfo {
	m := machineInfo{CPUs: runtime.GOMAXPROCS(0), Go: runtime.Version(), Date: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}

// cell is one server under one scenario, summarised over repetitions.
type cell struct {
	median, min, max float64
	ratio            float64 // median over the baseline's median
	offered          float64 // median datagrams/s sent
	drops            uint64  // median kernel drops
	p50, p99, p999   int64   // median RTT percentiles (echo)
}

type report struct {
	machine   machineInfo
	servers   []server
	scenarios []scenario
	cells     map[string]map[string]cell // scenario -> server -> cell
	reps      int
	dur       time.Duration
	took      time.Duration
	// For a table of shardd against itself (the offload mode): what the
	// ratio column compares with, the line above the table and the chart
	// title; the naive server's comparison when empty.
	vs, intro, title string
}

func median[T int64 | uint64 | float64](v []T) T {
	s := append([]T(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func buildReport(servers []server, scenarios []scenario, samples []sample, reps int, dur, took time.Duration) *report {
	r := &report{machine: readMachine(), servers: servers, scenarios: scenarios, cells: map[string]map[string]cell{}, reps: reps, dur: dur, took: took}
	for _, sc := range scenarios {
		r.cells[sc.String()] = map[string]cell{}
		var base float64
		for _, srv := range servers {
			var rates, offered []float64
			var drops []uint64
			var p50, p99, p999 []int64
			for _, s := range samples {
				if s.Server == srv.Name && s.Scenario == sc.String() {
					rates = append(rates, s.Rate)
					offered = append(offered, s.Offered)
					drops = append(drops, s.Drops)
					p50, p99, p999 = append(p50, s.P50), append(p99, s.P99), append(p999, s.P999)
				}
			}
			if len(rates) == 0 {
				continue // a TCP-only variant in a UDP load
			}
			c := cell{median: median(rates), offered: median(offered), min: math.Inf(1), drops: median(drops), p50: median(p50), p99: median(p99), p999: median(p999)}
			for _, v := range rates {
				c.min, c.max = math.Min(c.min, v), math.Max(c.max, v)
			}
			if srv.Baseline {
				base = c.median
			}
			r.cells[sc.String()][srv.Name] = c
		}
		for name, c := range r.cells[sc.String()] {
			if base > 0 {
				c.ratio = c.median / base
			}
			r.cells[sc.String()][name] = c
		}
	}
	return r
}

// plural is "1 run", "3 runs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func (r *report) markdown() string {
	var b strings.Builder
	m := r.machine
	intro, vs := r.intro, r.vs
	if intro == "" {
		intro, vs = "discard: shardload one-way with one GSO sender per CPU (offered/s is what the kernel took from it); echo: one sender thread, 16 requests in flight per flow; tcp-echo: one sender thread, 256 connections with one request in flight each (naive: a goroutine per connection).", "naive"
	}
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, Linux %s, %s, %s. Loopback, 64 flows; %s %d interleaved repetitions of %v per cell (took %v).\n\n",
		m.CPU, m.CPUs, m.Kernel, m.Go, m.Date, intro, r.reps, r.dur, r.took.Round(time.Second))
	fmt.Fprintf(&b, "| load | server | median | min-max | vs %s | offered/s | kernel drops (median) | RTT p50 / p99 / p99.9 |\n", vs)
	fmt.Fprintf(&b, "|---|---|---:|---:|---:|---:|---:|---|\n")
	for _, sc := range r.scenarios {
		unit := "datagrams/s received"
		if sc.Mode != "discard" {
			unit = "round trips/s"
		}
		for _, srv := range r.servers {
			c, ok := r.cells[sc.String()][srv.Name]
			if !ok {
				continue
			}
			rtt := "-"
			if sc.Mode != "discard" {
				rtt = fmt.Sprintf("%v / %v / %v", time.Duration(c.p50).Round(time.Microsecond), time.Duration(c.p99).Round(time.Microsecond), time.Duration(c.p999).Round(time.Microsecond))
			}
			fmt.Fprintf(&b, "| %s (%s) | %s | %s | %s-%s | %.2fx | %s | %d | %s |\n", sc, unit, srv.Name, human(c.median), human(c.min), human(c.max), c.ratio, human(c.offered), c.drops, rtt)
		}
	}
	return b.String()
}

// svg draws grouped bars: one group per load, one bar per server, the
// height its median over the baseline's, a whisker from the slowest to
// the fastest repetition.
func (r *report) svg() string {
	title, vs := r.title, "the variant with the offload off"
	if title == "" {
		title, vs = "shardd vs the naive Go server: UDP and TCP loads on loopback", "the naive server"
	}
	c := chartSpec{
		title: fmt.Sprintf("%s, %s", title, r.machine.Date),
		note: fmt.Sprintf("Bars: median rate of %s of %v over %s's median (dashed line: 1x); whiskers: slowest to fastest repetition. discard: datagrams/s received; echo, tcp-echo: round trips/s.",
			plural(r.reps, "repetition"), r.dur, vs),
		tick: func(v float64) string { return fmt.Sprintf("%.1fx", v) },
		ref:  1,
	}
	for _, srv := range r.servers {
		c.series = append(c.series, srv.Name)
	}
	for _, sc := range r.scenarios {
		g := chartGroup{label: sc.String()}
		for si, srv := range r.servers {
			cl, ok := r.cells[sc.String()][srv.Name]
			if !ok {
				continue
			}
			b := chartBar{series: si, value: cl.ratio, label: fmt.Sprintf("%.2fx", cl.ratio),
				tip: fmt.Sprintf("%s, %s: %s/s (%.2fx), min-max %s-%s", srv.Name, sc, human(cl.median), cl.ratio, human(cl.min), human(cl.max))}
			if r.reps > 1 && cl.ratio > 0 {
				base := cl.median / cl.ratio
				b.lo, b.hi = cl.min/base, cl.max/base
			}
			g.bars = append(g.bars, b)
		}
		c.groups = append(c.groups, g)
	}
	return c.svg()
}
