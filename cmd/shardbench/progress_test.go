package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestProgress: one line per run, its number among those planned and the
// time left: the load still to come plus the overhead measured so far.
func TestProgress(t *testing.T) {
	now := time.Unix(0, 0)
	var out bytes.Buffer
	p := &progress{w: &out, now: func() time.Time { return now }}
	p.plan(3, 2*time.Second)
	p.start("discard 64B naive rep 1/3", 2*time.Second) // 3 x 2s + 3 x 1s guessed
	now = now.Add(2500 * time.Millisecond)
	p.end("%d/s, drops %d", 1000, 2)
	p.start("discard 64B shardd 1 shard rep 1/3", 2*time.Second) // 2 x 2s + 2 x 0.5s measured
	now = now.Add(3 * time.Second)
	p.end("failed")
	p.plan(-1, 2*time.Second)                       // a mode skipped
	p.start("one more than planned", 2*time.Second) // 2s + 0.75s
	p.start("started again before the end", 0)
	now = now.Add(time.Second)
	p.end("done")
	want := "[1/3] discard 64B naive rep 1/3 — about 9s left: 1000/s, drops 2\n" +
		"[2/3] discard 64B shardd 1 shard rep 1/3 — about 5s left: failed\n" +
		"[3/3] one more than planned — about 3s left\n" +
		"[3/3] started again before the end — about 3s left: done\n"
	if out.String() != want {
		t.Fatalf("progress lines:\n%s\nwant:\n%s", out.String(), want)
	}
	var nilp *progress
	nilp.plan(1, time.Second)
	nilp.start("x", time.Second)
	nilp.end("y")
}

// TestRateSearchLeft: the probes a search says are left match the probes
// it then runs, when its guess of the doublings is right, and once it
// bisects whatever the guess.
func TestRateSearchLeft(t *testing.T) {
	capacity := 130000.0
	for _, guess := range []int{1, 4, 9} {
		r := &rateSearch{rate: 25000, steps: 3}
		var left []int
		for !r.done() {
			left = append(left, r.left(guess))
			r.record(syslogProbe{Offered: r.rate, Sent: 1, Written: 1}, r.rate <= capacity)
		}
		if r.left(guess) != 0 || r.doublings != 4 || len(left) != 7 {
			t.Fatalf("guess %d: left %v, doublings %d after the search", guess, left, r.doublings)
		}
		for i, n := range left {
			actual := len(left) - i
			if (guess == 4 || i >= 4) && n != actual {
				t.Errorf("guess %d: before probe %d, %d left, want %d (%v)", guess, i+1, n, actual, left)
			}
			if n < 1 {
				t.Errorf("guess %d: before probe %d, none left", guess, i+1)
			}
		}
	}
}

// TestQuickLook: --quick shortens every mode, syslog and dns included,
// and a flag given on the command line keeps its value, before or after.
func TestQuickLook(t *testing.T) {
	o, err := parseFlags([]string{"--quick"})
	if err != nil {
		t.Fatal(err)
	}
	if o.reps != 1 || o.dur != time.Second || o.dns.zeroDur != time.Second || o.syslog.dur != time.Second || o.syslog.reps != 1 || o.syslog.steps != 1 {
		t.Fatalf("--quick: reps %d, duration %v, dns zero %v, syslog %v x %d rounds, %d steps", o.reps, o.dur, o.dns.zeroDur, o.syslog.dur, o.syslog.reps, o.syslog.steps)
	}
	o, err = parseFlags([]string{"--reps", "2", "--quick", "--syslog-rounds", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if o.reps != 2 || o.syslog.reps != 3 || o.dur != time.Second || o.syslog.dur != time.Second {
		t.Fatalf("--reps 2 --quick --syslog-rounds 3: reps %d, syslog rounds %d, duration %v, syslog %v", o.reps, o.syslog.reps, o.dur, o.syslog.dur)
	}
	o, err = parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.reps != 3 || o.syslog.reps != 3 || o.syslog.dur != 3*time.Second {
		t.Fatalf("defaults changed without --quick: reps %d, syslog %v x %d", o.reps, o.syslog.dur, o.syslog.reps)
	}
	if !strings.Contains(o.fs.Lookup("quick").Usage, "--syslog-rounds 1") {
		t.Errorf("--quick's help does not list what it sets: %q", o.fs.Lookup("quick").Usage)
	}
}
