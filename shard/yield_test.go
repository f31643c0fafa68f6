package shard

import (
	"testing"
	"time"
)

func TestYielderPaces(t *testing.T) {
	var y yielder
	t0 := time.Now()
	steps := []struct {
		after time.Duration
		want  bool
	}{
		{0, true}, // the first call yields
		{time.Millisecond, false},
		{yieldEvery - time.Nanosecond, false},
		{yieldEvery, true},
		{yieldEvery + time.Millisecond, false},
		{3 * yieldEvery, true}, // a long gap yields once, not once per period missed
		{3*yieldEvery + time.Millisecond, false},
	}
	for _, s := range steps {
		if got := y.maybe(t0.Add(s.after)); got != s.want {
			t.Errorf("at +%v: yielded %v, want %v", s.after, got, s.want)
		}
	}
}

func TestLockedThreads(t *testing.T) {
	for _, c := range []struct {
		in   Info
		want int
	}{
		{Info{Shards: 3, UDP: true}, 3},
		{Info{Shards: 3, UDP: true, TCP: true, TCPShape: TCPShapeLoop}, 6},
		{Info{Shards: 3, UDP: true, TCP: true, TCPShape: TCPShapeGoroutines}, 3}, // TLS, or asked for
		{Info{Shards: 2, TCP: true, TCPShape: TCPShapeLoop}, 2},
	} {
		if got := c.in.LockedThreads(); got != c.want {
			t.Errorf("%+v: %d locked threads, want %d", c.in, got, c.want)
		}
	}
}
