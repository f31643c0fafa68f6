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
// one included) plus, for each, the mean time the runs of its kind took
// so far beyond their load (starting a server, draining, stopping it,
// counting what it wrote); for a kind not measured yet, one second or the
// mean of the other kinds if that is longer. A nil *progress prints
// nothing.
type progress struct {
	w       io.Writer
	now     func() time.Time
	kinds   map[string]*runKind
	cur     *runKind
	started time.Time
	open    bool // a line is printed and its result not yet
}

// runKind counts the runs of one kind (a mode): planned, ended, the load
// time of those not yet ended, and the time the ended ones took beyond
// their load.
type runKind struct {
	total, done     int
	loadLeft, extra time.Duration
	load            time.Duration // the current run's
}

// overheadGuess is the time a run takes beyond its load until one is measured.
const overheadGuess = time.Second

func newProgress(w io.Writer) *progress { return &progress{w: w, now: time.Now} }

func (p *progress) kind(name string) *runKind {
	if p.kinds == nil {
		p.kinds = map[string]*runKind{}
	}
	if p.kinds[name] == nil {
		p.kinds[name] = &runKind{}
	}
	return p.kinds[name]
}

// plan adds runs of a kind, each loading for load; a negative count takes
// planned runs back (a mode skipped, a search that ended sooner than
// guessed).
func (p *progress) plan(kind string, runs int, load time.Duration) {
	if p == nil {
		return
	}
	k := p.kind(kind)
	k.total = max(k.total+runs, k.done)
	k.loadLeft = max(k.loadLeft+time.Duration(runs)*load, 0)
}

// counts are the runs ended and planned, over every kind.
func (p *progress) counts() (done, total int) {
	for _, k := range p.kinds {
		done, total = done+k.done, total+k.total
	}
	return done, total
}

// left estimates the time until the planned runs have ended.
func (p *progress) left() time.Duration {
	all, extra := 0, time.Duration(0)
	for _, k := range p.kinds {
		all, extra = all+k.done, extra+k.extra
	}
	var left time.Duration
	for _, k := range p.kinds {
		per := overheadGuess
		switch {
		case k.done > 0:
			per = k.extra / time.Duration(k.done)
		case all > 0:
			per = max(per, extra/time.Duration(all))
		}
		left += k.loadLeft + time.Duration(k.total-k.done)*per
	}
	return left
}

// start prints the line of a run of a kind loading for load, up to its
// result.
func (p *progress) start(kind, what string, load time.Duration) {
	if p == nil {
		return
	}
	if p.open {
		p.end("no result") // every start has its end; this is a guard
	}
	k := p.kind(kind)
	// More runs than planned: this one was not counted yet.
	k.total = max(k.total, k.done+1)
	k.loadLeft = max(k.loadLeft, load)
	k.load, p.cur, p.started, p.open = load, k, p.now(), true
	done, total := p.counts()
	fmt.Fprintf(p.w, "[%d/%d] %s — about %v left", done+1, total, what, p.left().Round(time.Second))
}

// end finishes the current run's line with its result.
func (p *progress) end(format string, args ...any) {
	if p == nil || p.cur == nil {
		return
	}
	k := p.cur
	k.extra += max(p.now().Sub(p.started)-k.load, 0)
	k.loadLeft = max(k.loadLeft-k.load, 0)
	k.done++
	if p.open {
		fmt.Fprintf(p.w, ": "+format+"\n", args...)
	}
	p.cur, p.open = nil, false
}
