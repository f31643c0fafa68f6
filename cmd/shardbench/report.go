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
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, Linux %s, %s, %s. Loopback, 64 flows; discard: shardload one-way with one GSO sender per CPU (offered/s is what the kernel took from it); echo: one sender thread, 16 requests in flight per flow; tcp-echo: one sender thread, 256 connections with one request in flight each (naive: a goroutine per connection). %d interleaved repetitions of %v per cell (took %v).\n\n",
		m.CPU, m.CPUs, m.Kernel, m.Go, m.Date, r.reps, r.dur, r.took.Round(time.Second))
	fmt.Fprintf(&b, "| load | server | median | min-max | vs naive | offered/s | kernel drops (median) | RTT p50 / p99 / p99.9 |\n")
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

// svg draws grouped bars: one group per scenario, one bar per server, the
// height its median over the baseline's.
func (r *report) svg() string {
	const w, h, left, bottom, top = 900, 420, 60, 80, 40
	colors := []string{"#9e9e9e", "#90caf9", "#1e88e5", "#0d47a1", "#ef6c00", "#6a1b9a", "#2e7d32"}
	maxRatio := 1.0
	for _, row := range r.cells {
		for _, c := range row {
			maxRatio = math.Max(maxRatio, c.ratio)
		}
	}
	maxRatio = math.Ceil(maxRatio*2) / 2
	plotH := float64(h - bottom - top)
	groupW := float64(w-left-20) / float64(len(r.scenarios))
	barW := groupW * 0.8 / float64(len(r.servers))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">shardd vs naive Go UDP server (median of %d, ratio to naive), %s</text>`+"\n", left, r.reps, r.machine.Date)
	for t := 0.0; t <= maxRatio+1e-9; t += 0.5 {
		y := float64(h-bottom) - t/maxRatio*plotH
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.1fx</text>`+"\n", left, w-20, y, y, left-6, y+4, t)
	}
	for gi, sc := range r.scenarios {
		gx := float64(left) + float64(gi)*groupW + groupW*0.1
		for si, srv := range r.servers {
			c, ok := r.cells[sc.String()][srv.Name]
			if !ok {
				continue
			}
			bh := c.ratio / maxRatio * plotH
			x := gx + float64(si)*barW
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s, %s: %s/s (%.2fx)</title></rect>`+"\n",
				x, float64(h-bottom)-bh, barW-2, bh, colors[si%len(colors)], srv.Name, sc, human(c.median), c.ratio)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%.2f</text>`+"\n", x+barW/2-1, float64(h-bottom)-bh-3, c.ratio)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx+groupW*0.4, h-bottom+16, sc)
	}
	for si, srv := range r.servers {
		x := left + si*150
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", x, h-30, colors[si%len(colors)], x+16, h-20, srv.Name)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
