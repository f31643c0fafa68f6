package main

import (
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

// TestParseProcStatCPU: utime+stime, counted from the last ')' of a
// command name that holds spaces and parentheses.
func TestParseProcStatCPU(t *testing.T) {
	line := "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 125 0 0 20 0 3 0 1000 0 0\n"
	d, err := parseProcStatCPU([]byte(line))
	if err != nil || d != 3750*time.Millisecond {
		t.Fatalf("got %v, %v; want 3.75s (375 ticks)", d, err)
	}
	for _, bad := range []string{"4242 no parens S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 0 0 0 0 0 x 1 0"} {
		if _, err := parseProcStatCPU([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
