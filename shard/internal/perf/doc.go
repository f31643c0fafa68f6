// Package perf is the home of shardd's side-by-side performance benchmarks:
// shardd against the naive Go server (one socket, one goroutine,
// ReadFromUDP/WriteToUDP, as cmd/naive) and, for the receive path, against
// a C recvmmsg reader (testdata/bench/creader.c), under loads the
// benchmarks generate themselves on 127.0.0.1. It holds no code of its own:
// everything is in its _test.go files, run with
//
//	make bench-perf
//	go test -run '^$' -bench . -benchtime 7x ./shard/internal/perf/
//
// See perf_linux_test.go for the flags, the rounds and the metrics. The
// shard package keeps only its own unit benchmarks (BenchmarkShardLoop,
// BenchmarkServeBatch).
package perf
