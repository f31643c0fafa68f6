package shard

import (
	"runtime"
	"time"
)

// yieldEvery is how often a busy shard hands its thread back to the Go
// scheduler: well under the runtime's 10 ms preemption threshold.
const yieldEvery = 4 * time.Millisecond

// yielder paces runtime.Gosched on a shard's locked thread.
//
// A shard goroutine never reschedules: it blocks in recvmmsg, poll or
// epoll_wait and comes back, forever on one scheduling tick. The runtime's
// monitor (sysmon) takes that for a goroutine running too long: every
// 10 ms it preempts it (a signal, which ends the blocking call with
// EINTR), retakes its P, and, having retaken one, goes back to waking
// every 20 µs. Measured on this project's DNS load (2 shards, dnsperf over
// a veth pair): sysmon woke 10,000 times a second and used 12% of a CPU;
// with a yield every 4 ms, 700 times and 1%. A yield costs two thread
// wake-ups (the locked thread hands its P over and gets it back), a few
// hundred a second per busy shard, none when idle.
type yielder struct{ next time.Time }

// maybe yields if yieldEvery has passed since the last yield; it reports
// whether it did.
func (y *yielder) maybe(now time.Time) bool {
	if now.Before(y.next) {
		return false
	}
	y.next = now.Add(yieldEvery)
	runtime.Gosched()
	return true
}
