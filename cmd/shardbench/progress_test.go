package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// TestProgress: one line per run, its number among those planned and the
// time left: the load still to come plus the overhead measured so far, per
// kind of run (for a kind not measured yet, 1s or the mean of all kinds if
// longer).
func TestProgress(t *testing.T) {
	now := time.Unix(0, 0)
	var out bytes.Buffer
	p := &progress{w: &out, now: func() time.Time { return now }}
	p.plan("load", 2, 2*time.Second)
	p.plan("syslog", 1, 2*time.Second)
	p.start("load", "discard 64B naive rep 1/2", 2*time.Second) // 3 x 2s + 3 x 1s guessed
	now = now.Add(2500 * time.Millisecond)
	p.end("%d/s, drops %d", 1000, 2)
	p.start("load", "discard 64B naive rep 2/2", 2*time.Second) // 2s + 0.5s measured, 2s + 1s for syslog
	now = now.Add(3 * time.Second)
	p.end("failed")
	p.start("syslog", "syslog probe", 2*time.Second) // 2s + 1s, longer than the loads' 0.75s
	now = now.Add(4 * time.Second)
	p.end("ok")
	p.plan("syslog", 1, 2*time.Second)                   // a search longer than guessed: 2s + 2s, syslog's own
	p.plan("load", -1, 2*time.Second)                    // no more than have ended
	p.start("syslog", "syslog probe", 2*time.Second)     // 2s + 2s
	p.start("syslog", "started again before the end", 0) // 0s + 2s/2
	now = now.Add(6 * time.Second)
	p.end("done")
	p.start("upgrade", "one more than planned", time.Second) // 1s + max(1s, 9.5s/5)
	want := "[1/3] discard 64B naive rep 1/2 — about 9s left: 1000/s, drops 2\n" +
		"[2/3] discard 64B naive rep 2/2 — about 6s left: failed\n" +
		"[3/3] syslog probe — about 3s left: ok\n" +
		"[4/4] syslog probe — about 4s left: no result\n" +
		"[5/5] started again before the end — about 1s left: done\n" +
		"[6/6] one more than planned — about 3s left"
	if out.String() != want {
		t.Fatalf("progress lines:\n%s\nwant:\n%s", out.String(), want)
	}
	var nilp *progress
	nilp.plan("load", 1, time.Second)
	nilp.start("load", "x", time.Second)
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

// TestExitCodes: --help exits 0, a bad flag or value 2, a failed run 1.
func TestExitCodes(t *testing.T) {
	defer func(w io.Writer) { stdout = w }(stdout)
	stdout = io.Discard
	for _, c := range []struct {
		args []string
		want int
	}{{[]string{"--help"}, 0}, {[]string{"--bogus"}, 2}, {[]string{"--quick", "--reps", "0"}, 2}, {[]string{"--bin", t.TempDir()}, 1}} {
		if got := exitCode(run(c.args), io.Discard); got != c.want {
			t.Errorf("shardbench %s: exit %d, want %d", strings.Join(c.args, " "), got, c.want)
		}
	}
}
