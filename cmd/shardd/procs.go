package main

import (
	"os"
	"runtime"
	"strconv"

	"go.uber.org/zap"

	"github.com/shardd/shardd/shard"
)

// reserveProcs sets GOMAXPROCS to one more than the shard threads of all
// groups, unless GOMAXPROCS is set in the environment, and logs the
// choice.
//
// Each shard's locked thread keeps its P (the runtime's right to run Go
// code) while it blocks in the kernel. With as many Ps as shard threads
// (the default: both are the CPU count) no P is ever idle, so the
// runtime's monitor takes one back from a blocked shard every few tens of
// microseconds to let the other goroutines (metrics, timers, logs) run,
// and wakes a thread to do so; measured under DNS load with 2 shards,
// its wake-ups fell from 700-4,000 to 150-200 a second with one P more. Extra Ps
// cost nothing while idle: the shards still get one thread per CPU.
func reserveProcs(groups []*shard.Group, log *zap.Logger) {
	threads := 0
	for _, g := range groups {
		threads += g.Info().LockedThreads()
	}
	source := "environment"
	if env := os.Getenv("GOMAXPROCS"); env == "" || !validProcs(env) {
		source = "shards"
		if want := threads + 1; want > runtime.GOMAXPROCS(0) {
			runtime.GOMAXPROCS(want)
		}
	}
	log.Info("scheduler", zap.Int("gomaxprocs", runtime.GOMAXPROCS(0)), zap.Int("shard_threads", threads), zap.String("gomaxprocs_from", source))
}

// validProcs reports whether the runtime takes env as GOMAXPROCS (a
// positive integer; it ignores anything else).
func validProcs(env string) bool {
	n, err := strconv.Atoi(env)
	return err == nil && n > 0
}
