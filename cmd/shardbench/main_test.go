package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadPortSeesBoundSockets(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	ps, err := readPort(port)
	if err != nil || ps.n != 1 || ps.queued != 0 || ps.drops != 0 {
		t.Fatalf("readPort(%d) = %+v, %v", port, ps, err)
	}
	// A datagram waiting in the queue shows as queued bytes.
	s, err := net.DialUDP("udp4", nil, c.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("queued")); err != nil {
		t.Fatal(err)
	}
	// Loopback delivery may be deferred (softirq) on a loaded machine:
	// poll for the queued bytes instead of looking once after a sleep.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ps, _ := readPort(port)
		if ps.queued != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queued datagram not seen: %+v", ps)
		}
	}
}

func TestMedianAndReport(t *testing.T) {
	if median([]float64{5, 1, 3}) != 3 || median([]uint64{4, 2}) != 3 || median([]int64{}) != 0 {
		t.Fatal("median")
	}
	servers := []server{{Name: "naive", Baseline: true}, {Name: "fast"}}
	sc := []scenario{{Mode: "discard", Size: 64}}
	samples := []sample{
		{Server: "naive", Scenario: "discard 64B", Rate: 100}, {Server: "naive", Scenario: "discard 64B", Rate: 120}, {Server: "naive", Scenario: "discard 64B", Rate: 80},
		{Server: "fast", Scenario: "discard 64B", Rate: 300}, {Server: "fast", Scenario: "discard 64B", Rate: 250}, {Server: "fast", Scenario: "discard 64B", Rate: 350},
	}
	r := buildReport(servers, sc, samples, 3, time.Second, time.Minute)
	c := r.cells["discard 64B"]["fast"]
	if c.median != 300 || c.min != 250 || c.max != 350 || c.ratio != 3 {
		t.Fatalf("cell %+v", c)
	}
	md := r.markdown()
	if !strings.Contains(md, "| fast | 300 | 250-350 | 3.00x |") {
		t.Fatalf("markdown:\n%s", md)
	}
	if svg := r.svg(); !strings.HasPrefix(svg, "<svg") || !strings.Contains(svg, "3.00") {
		t.Fatalf("svg:\n%s", svg)
	}
}

// TestSuiteEndToEnd builds the binaries and runs one short round of the
// suite, as make bench does, checking that every output lands.
func TestSuiteEndToEnd(t *testing.T) {
	bin := buildSuite(t)
	dir := t.TempDir()
	peer := "peer=" + filepath.Join(bin, "naive") + " --proto {proto} --handler {handler} 127.0.0.1:{port}"
	// 1 s runs: in 300 ms a loaded CI machine once let the 256 TCP echo
	// connections exchange nothing ("echo run without replies").
	if err := run([]string{"--bin", bin, "--out", dir, "--reps", "1", "--duration", "1s", "--sizes", "64", "--peer", peer, "--modes", "discard,echo,tcp-echo,upgrade"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.md", "results.json", "chart.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	for _, f := range []string{"chart-dns.svg", "chart-syslog.svg"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s written though its mode did not run", f)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "results.md"))
	for _, want := range []string{"discard 64B", "| echo 64B", "tcp-echo 64B", "| naive |", "| shardd 1 shard |", "--pin", "--steer cpu", "--tcp-shape goroutines", "| peer |", "Upgrade under load: 10 upgrades", "lost 0."} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	if err := run([]string{"--bin", bin, "--peer", "nameonly"}); err == nil {
		t.Error("a --peer without a command was accepted")
	}
}

// buildSuite builds shardd, shardload and naive into a temporary directory
// for a test that runs load (skipped under -short) and returns it.
func buildSuite(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds binaries and runs load")
	}
	bin := t.TempDir()
	out := exec.Command("go", "build", "-o", bin+"/", "../shardd", "../shardload", "../naive")
	if b, err := out.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	return bin
}
