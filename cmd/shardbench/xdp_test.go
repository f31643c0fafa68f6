package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestXDPRatios: each dnsperf rate is divided by shardd UDP's in the same
// layout and round, never another's; discard runs are left out.
func TestXDPRatios(t *testing.T) {
	runs := []xdpRun{
		{Load: "dnsperf", Server: "shardd --xdp", Queues: 1, Rep: 1, Rate: 150},
		{Load: "dnsperf", Server: "shardd UDP", Queues: 1, Rep: 1, Rate: 100},
		{Load: "dnsperf", Server: "Knot DNS XDP", Queues: 1, Rep: 1, Rate: 120},
		{Load: "discard", Server: "shardd --xdp", Queues: 1, Rep: 1, Rate: 999},
		{Load: "dnsperf", Server: "shardd --xdp", Queues: 2, Rep: 1, Rate: 110},
		{Load: "dnsperf", Server: "shardd UDP", Queues: 2, Rep: 1, Rate: 200},
	}
	got := xdpRatios(runs)
	for _, want := range []string{
		"- 1 queue(s), round 1: shardd --xdp 1.50x Knot DNS XDP 1.20x\n",
		"- 2 queue(s), round 1: shardd --xdp 0.55x\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ratios lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "9.99") {
		t.Errorf("a discard run was counted:\n%s", got)
	}
}

// TestProcessCPU: the CPU time of this process grows while it computes
// (bounded: 30 s), and a process that does not exist is an error.
func TestProcessCPU(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 1.0
	for deadline := time.Now().Add(30 * time.Second); ; {
		for range 1_000_000 {
			x = x*1.0000001 + 1e-9
		}
		now, err := processCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stayed at %v after 30 s of work (%v)", now, x)
		}
	}
	if _, err := processCPU(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
