package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBoundsAreConsistent(t *testing.T) {
	for i := 0; i < 40*subBuckets; i++ {
		lo := lowerBound(i)
		if bucketOf(lo) != i {
			t.Fatalf("lowerBound(%d)=%d maps to bucket %d", i, lo, bucketOf(lo))
		}
		if hi := lowerBound(i + 1); hi <= lo || bucketOf(hi-1) != i {
			t.Fatalf("bucket %d spans [%d, %d) inconsistently", i, lo, hi)
		}
	}
}

func TestQuantilesWithinRelativeError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h histogram
	var vals []time.Duration
	for i := 0; i < 100000; i++ {
		// Log-uniform from 1 µs to 100 ms, like RTTs under load.
		v := time.Duration(float64(int(1000)<<r.IntN(17)) * (1 + r.Float64()))
		vals = append(vals, v)
		h.record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.quantile(q)
		if diff := float64(got-exact) / float64(exact); diff > 0.02 || diff < -0.02 {
			t.Errorf("q%v: got %v, exact %v (%.2f%% off)", q, got, exact, 100*diff)
		}
	}
	if h.quantile(1) != vals[len(vals)-1] || h.max != vals[len(vals)-1] || h.min != vals[0] {
		t.Errorf("max %v / min %v, want %v / %v", h.max, h.min, vals[len(vals)-1], vals[0])
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	var a, b, empty histogram
	if empty.quantile(0.5) != 0 {
		t.Fatal("empty histogram has a median")
	}
	for i := 1; i <= 100; i++ {
		a.record(time.Duration(i) * time.Microsecond)
		b.record(time.Duration(i+100) * time.Microsecond)
	}
	a.merge(&b)
	a.merge(&empty)
	if a.total != 200 || a.max != 200*time.Microsecond || a.min != time.Microsecond {
		t.Fatalf("merged: total %d, min %v, max %v", a.total, a.min, a.max)
	}
	if med := a.quantile(0.5); med < 98*time.Microsecond || med > 102*time.Microsecond {
		t.Fatalf("median of 1..200µs = %v", med)
	}
}
