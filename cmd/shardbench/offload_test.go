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
// JSON samples and chart land, and every run had traffic (echo: replies).
func TestOffloadEndToEnd(t *testing.T) {
	bin := buildSuite(t)
	dir := t.TempDir()
	if err := run([]string{"--bin", bin, "--out", dir, "--reps", "2", "--duration", "500ms", "--sizes", "64", "--modes", "offload"}); err != nil {
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
		"| echo 64B, GSO sender (round trips/s) | shardd --gro on --gso off |", "| echo 64B, GSO sender (round trips/s) | shardd --gro on --gso on |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	js, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	var res struct {
		Samples []sample `json:"samples"`
		Offload struct {
			Samples []sample `json:"samples"`
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
}
