package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestRateSearch: doubling until a loss, then bisecting; the best clean
// probe is kept.
func TestRateSearch(t *testing.T) {
	capacity := 130000.0 // a server that loses above this rate
	r := &rateSearch{rate: 25000, steps: 3}
	var asked []float64
	for !r.done() && len(asked) < 50 {
		asked = append(asked, r.rate)
		ok := r.rate <= capacity
		r.record(syslogProbe{Offered: r.rate, Sent: 1, Written: 1}, ok)
	}
	want := []float64{25000, 50000, 100000, 200000, 150000, 125000, 137500}
	if len(asked) != len(want) {
		t.Fatalf("asked %v, want %v", asked, want)
	}
	for i := range want {
		if asked[i] != want[i] {
			t.Fatalf("asked %v, want %v", asked, want)
		}
	}
	if r.best == nil || r.best.Offered != 125000 {
		t.Fatalf("best %+v, want the 125000 probe", r.best)
	}
	// A server that loses at once: bisection towards zero, no best.
	r = &rateSearch{rate: 25000, steps: 2}
	for !r.done() {
		r.record(syslogProbe{Offered: r.rate}, false)
	}
	if r.best != nil {
		t.Fatalf("best %+v for a server that always loses", r.best)
	}
}

// TestSyslogModeEndToEnd runs the syslog mode briefly (one round, no
// bisection): the four contenders probed (shardd and rsyslogd into a file
// and into kfake; rsyslog's omkafka only if rsyslog-kafka is installed,
// which CI requires), the table and the chart written.
func TestSyslogModeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and runs load")
	}
	requireTool(t, "rsyslogd")
	servers := []string{"shardd ", "rsyslogd imudp", fmt.Sprintf("shardd %d shards → Kafka (kfake)", runtime.GOMAXPROCS(0))}
	if m, _ := filepath.Glob(omkafkaGlob); len(m) > 0 {
		servers = append(servers, fmt.Sprintf("rsyslogd imudp (%d threads) → omkafka (kfake)", runtime.GOMAXPROCS(0)))
	} else if os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s: rsyslog's omkafka is not installed (rsyslog-kafka), and SHARDD_REQUIRE_TOOLS=1", omkafkaGlob)
	}
	bin := t.TempDir()
	if b, err := exec.Command("go", "build", "-o", bin+"/", "../shardd", "../shardload", "../naive").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	dir := t.TempDir()
	err := run([]string{"--bin", bin, "--out", dir, "--modes", "syslog", "--syslog-payload", "../../testdata/syslog/rfc5424.txt",
		"--syslog-duration", "300ms", "--syslog-rounds", "1", "--syslog-steps", "0"})
	if err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "results.md"))
	var js struct {
		Syslog *syslogResult `json:"syslog"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	if err := json.Unmarshal(b, &js); err != nil || js.Syslog == nil || len(js.Syslog.Overload) != len(servers) || len(js.Syslog.Probes) < 2 {
		t.Fatalf("results.json: %v\n%s", err, b)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "chart-syslog.svg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range servers {
		if !strings.Contains(string(md), "| "+srv) || !strings.Contains(string(svg), ">"+srv) {
			t.Errorf("%q missing from results.md or chart-syslog.svg's legend:\n%s\n%s", srv, md, svg)
		}
	}
	checkLayout(t, "chart-syslog.svg", string(svg))
}
