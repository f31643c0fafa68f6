package perf

import (
	"runtime"
	"testing"

	"github.com/shardd/shardd/shard"
)

// drainOpts is how a drain variant is filled and read: segs datagrams per
// GSO send (0 or 1: plain sendmmsg), and UDP GRO on shardd's and the C
// reader's sockets (OffloadOn: the C reader gets -g; shardd takes gro as its
// Config.GRO, whose zero value is auto).
type drainOpts struct {
	segs int
	gro  shard.Offload
}

// fill fills the queues as o says (see flows.fill).
func (o drainOpts) fill(f *flows, n int, perFlow []int) (int, error) {
	if o.segs > 1 {
		return f.fillGSO(n, o.segs, perFlow)
	}
	return f.fill(n, perFlow)
}

// fillGSO is fill with UDP_SEGMENT on every flow: each send is segs
// datagrams of perfPayload bytes, perfGSOMsgs sends per sendmmsg, round
// robin over the flows until at least n datagrams have left (whole sends:
// up to a send's worth more). It leaves UDP_SEGMENT set.
func (f *flows) fillGSO(n, segs int, perFlow []int) (sent int, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := f.enableGSO(perfPayload); err != nil {
		return 0, err
	}
	v := newSendVec(make([]byte, perfPayload*segs))
	for sent < n {
		for i, fd := range f.fds {
			k := min(perfGSOMsgs, (n-sent+segs-1)/segs)
			if k == 0 {
				break
			}
			got, err := v.sendmmsg(fd, k)
			if err != nil {
				return sent, err
			}
			sent += got * segs
			if perFlow != nil {
				perFlow[i] += got * segs
			}
		}
	}
	return sent, nil
}

// BenchmarkDrainGRO measures receive capacity with a GSO sender (the
// queues filled with -perf.gsosegs x 64-byte datagrams per send before
// reading starts, as BenchmarkDrain): shardd with UDP GRO (each send
// queued as one coalesced buffer, split in place by the shards) and
// without (the kernel splits each send before the queue), against the C
// recvmmsg reader without and with GRO (-g: it counts each buffer's
// segments and handles nothing). One iteration = one round of the four,
// order rotated. Goals (issue 18): shardd-gro/creader >= 5 and
// shardd-gro/creader-gro >= 0.8. Besides the wall-clock rates (and their
// per-round ratios' quartiles) it reports CPU time per datagram
// (*-cpu-ns/pkt) and shardd-gro/creader-gro-cpu, the C reader's over
// shardd's: on a machine shared with other work, a decidable figure where
// the wall clock is not.
func BenchmarkDrainGRO(b *testing.B) {
	bin := buildCReader(b)
	segs := senderSegs(b)
	if segs < 2 {
		b.Skip("no UDP GSO sender here")
	}
	n := *perfN
	on, off := drainOpts{segs: segs, gro: shard.OffloadOn}, drainOpts{segs: segs, gro: shard.OffloadOff}
	b.ResetTimer()
	s := runRounds(b, []variant{
		{"shardd-gro", func(b *testing.B) map[string]float64 { return drainShardd(b, n, on).metrics() }},
		{"shardd", func(b *testing.B) map[string]float64 { return drainShardd(b, n, off).metrics() }},
		{"creader", func(b *testing.B) map[string]float64 { return drainC(b, bin, n, off).metrics() }},
		{"creader-gro", func(b *testing.B) map[string]float64 { return drainC(b, bin, n, on).metrics() }},
	})
	s.report(b, "shardd-gro-pkts/s", "shardd-pkts/s", "creader-pkts/s", "creader-gro-pkts/s",
		"shardd-gro-drops", "shardd-drops", "creader-drops", "creader-gro-drops", "shardd-gro-batch",
		"shardd-gro-cpu-ns/pkt", "creader-gro-cpu-ns/pkt")
	s.reportRatio(b, "shardd-gro-pkts/s", "shardd-pkts/s", "shardd-gro/shardd")
	s.reportRatio(b, "shardd-gro-pkts/s", "creader-pkts/s", "shardd-gro/creader")
	s.reportRatio(b, "shardd-gro-pkts/s", "creader-gro-pkts/s", "shardd-gro/creader-gro")
	// The same by CPU time per datagram, which load on the machine moves
	// far less than the wall clock: the C reader's over shardd's.
	s.reportRatio(b, "creader-gro-cpu-ns/pkt", "shardd-gro-cpu-ns/pkt", "shardd-gro/creader-gro-cpu")
}
