package main

import (
	"fmt"
	"io"
	"time"
)

// progress prints one line per run of the suite (not a spinner, so that a
// CI log stays readable): its number among the runs planned, what it is,
// an estimate of the time left, and, once the run is over, its result:
//
//	[12/40] discard 64B shardd 2 shards --pin rep 2/3 — about 3m10s left: 412734/s, drops 124081
//
// The estimate is the load time of the runs still to come (the current
// one included) plus, for each, the mean time the runs so far took beyond
// their load (starting a server, draining, stopping it), one second until
// a run has been measured. A nil *progress prints nothing.
type progress struct {
	w        io.Writer
	now      func() time.Time
	total    int           // runs planned
	done     int           // runs ended
	loadLeft time.Duration // load time of the runs not yet ended
	extra    time.Duration // time the ended runs took beyond their load
	cur      time.Duration // the current run's load
	started  time.Time
	open     bool // a line is printed and its result not yet
}

// overheadGuess is the time a run takes beyond its load until one is measured.
const overheadGuess = time.Second

func newProgress(w io.Writer) *progress { return &progress{w: w, now: time.Now} }

// plan adds runs, each loading for load; a negative count takes planned
// runs back (a mode skipped, a search that ended sooner than guessed).
func (p *progress) plan(runs int, load time.Duration) {
	if p == nil {
		return
	}
	p.total += runs
	p.loadLeft += time.Duration(runs) * load
	p.total = max(p.total, p.done)
	p.loadLeft = max(p.loadLeft, 0)
}

// left estimates the time until the planned runs have ended.
func (p *progress) left() time.Duration {
	per := overheadGuess
	if p.done > 0 {
		per = p.extra / time.Duration(p.done)
	}
	return p.loadLeft + time.Duration(p.total-p.done)*per
}

// start prints the line of a run loading for load, up to its result.
func (p *progress) start(what string, load time.Duration) {
	if p == nil {
		return
	}
	if p.open {
		fmt.Fprintln(p.w)
	}
	// More runs than planned: this one was not counted yet.
	if p.done >= p.total {
		p.total = p.done + 1
	}
	p.loadLeft = max(p.loadLeft, load)
	p.cur, p.started, p.open = load, p.now(), true
	fmt.Fprintf(p.w, "[%d/%d] %s — about %v left", p.done+1, p.total, what, p.left().Round(time.Second))
}

// end finishes the current run's line with its result.
func (p *progress) end(format string, args ...any) {
	if p == nil {
		return
	}
	took := p.now().Sub(p.started)
	p.extra += max(took-p.cur, 0)
	p.loadLeft = max(p.loadLeft-p.cur, 0)
	p.done++
	if p.open {
		fmt.Fprintf(p.w, ": "+format+"\n", args...)
	}
	p.open = false
}
