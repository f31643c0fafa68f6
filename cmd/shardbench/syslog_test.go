package main

import "testing"

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
