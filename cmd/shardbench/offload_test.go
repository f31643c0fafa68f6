package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOffloadPlan: --modes offload asks for a discard and an echo load
// with a GSO sender per size, apart from the UDP loads, and each offload
// variant runs in its one load only.
func TestOffloadPlan(t *testing.T) {
	p, err := parsePlan("discard,offload", "64,512")
	if err != nil || len(p.scenarios) != 2 || len(p.offload) != 4 {
		t.Fatalf("parsePlan: %+v, %v", p, err)
	}
	for _, sc := range p.offload {
		if !sc.GSO || !strings.HasSuffix(sc.String(), ", GSO sender") || !strings.Contains(strings.Join(sc.loadArgs("udp", 1), " "), "--gso on") {
			t.Errorf("offload load %+v: %q, args %q", sc, sc, sc.loadArgs("udp", 1))
		}
	}
	if p.scenarios[0].GSO || len(p.scenarios[0].gsoArgs()) != 0 {
		t.Errorf("plain discard load with a GSO sender flag: %+v", p.scenarios[0])
	}
	// 2 loads per size, 2 variants in each, 3 repetitions.
	if n := offloadRuns(p.offload, 3); n != 24 {
		t.Errorf("offloadRuns = %d, want 24", n)
	}
	for _, srv := range offloadServers(func(s string) string { return s }) {
		argv := strings.Join(srv.command(1, "echo", "udp"), " ")
		if !strings.Contains(argv, " --gro ") || srv.runs(scenario{Mode: "tcp-echo", Size: 64}) {
			t.Errorf("%s: argv %q", srv.Name, argv)
		}
	}
}

// TestOffloadEndToEnd runs the offload mode for short runs: its table,
// JSON samples and chart land, and every run had traffic (echo: replies);
// its syslog row probed shardd --gro off and on, each with traffic, and
// wrote records.
func TestOffloadEndToEnd(t *testing.T) {
	bin := buildSuite(t)
	dir := t.TempDir()
	if err := run([]string{"--bin", bin, "--out", dir, "--reps", "2", "--duration", "500ms", "--sizes", "64", "--modes", "offload",
		"--syslog-duration", "300ms", "--syslog-rounds", "1", "--syslog-steps", "0", "--syslog-start", "1000000",
		"--syslog-payload", filepath.Join("..", "..", "testdata", "syslog", "rfc5424.txt")}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.md", "results.json", "chart-offload.svg"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || len(b) == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "chart.svg")); err == nil {
		t.Error("chart.svg written though no UDP/TCP load ran")
	}
	md, _ := os.ReadFile(filepath.Join(dir, "results.md"))
	for _, want := range []string{"### UDP offloads", "| vs offload off |",
		"| discard 64B, GSO sender (datagrams/s received) | shardd --gro off |", "| discard 64B, GSO sender (datagrams/s received) | shardd --gro on |",
		"| echo 64B, GSO sender (round trips/s) | shardd --gro on --gso off |", "| echo 64B, GSO sender (round trips/s) | shardd --gro on --gso on |",
		"#### syslog into a file, GSO sender", "| vs shardd --gro off |", "| shardd --gro off | ", "| shardd --gro on | "} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	js, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	var res struct {
		Samples []sample `json:"samples"`
		Offload struct {
			Samples []sample      `json:"samples"`
			Syslog  *syslogResult `json:"syslog"`
		} `json:"offload"`
	}
	if err := json.Unmarshal(js, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Samples) != 0 || len(res.Offload.Samples) != 8 {
		t.Fatalf("samples: %d UDP/TCP, %d offload; want 0 and 8 (2 loads x 2 variants x 2 reps)", len(res.Samples), len(res.Offload.Samples))
	}
	for _, s := range res.Offload.Samples {
		if s.Sent == 0 || (strings.HasPrefix(s.Scenario, "echo") && (s.Rate <= 0 || s.P50 <= 0)) {
			t.Errorf("run without traffic: %+v", s)
		}
	}
	sl := res.Offload.Syslog
	if sl == nil || !sl.GSO || sl.Baseline != "shardd --gro off" || len(sl.Overload) != 2 || len(sl.Best) != 2 {
		t.Fatalf("syslog row: %+v", sl)
	}
	probed := map[string]int{}
	for _, p := range append(sl.Probes, sl.Overload...) {
		probed[p.Server]++
		if p.Sent == 0 || p.Written == 0 {
			t.Errorf("syslog probe without traffic or records: %+v", p)
		}
	}
	if probed["shardd --gro off"] < 2 || probed["shardd --gro on"] < 2 {
		t.Errorf("syslog probes per server %v, want a search and an overload probe of each", probed)
	}
}
