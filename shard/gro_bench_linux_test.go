package shard

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/packet"
)

// BenchmarkShardLoopGRO is BenchmarkShardLoop's discard with a GSO client:
// each step sends 8 buffers of 64 datagrams of 64 bytes (one sendmmsg),
// which the shard receives coalesced (GRO on), splits and serves; op is one
// datagram. Under callgrind (make bench-cpu) it gives the user-space
// instructions per datagram of the GRO receive path (the client's share of
// one sendmmsg per 512 datagrams included), to set beside the C reader's
// with -g (testdata/bench/creader.c).
func BenchmarkShardLoopGRO(b *testing.B) {
	const sends, segs, size = 8, 64, 64
	r := newLoopRig(b, "127.0.0.1:0", packet.Discard{}, sends, segs*size)
	if !r.s.gro {
		b.Skip("no UDP GRO here")
	}
	rc, _ := r.client.SyscallConn()
	var serr error
	_ = rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, size) })
	if serr != nil {
		b.Skip("no UDP_SEGMENT:", serr)
	}
	step := func() {
		if failed, err := r.tx.writeBatch(r.batch, nil); failed != 0 || err != nil {
			b.Fatalf("client: %d of %d not sent: %v", failed, sends, err)
		}
		for want := r.s.counts.RxPackets + sends*segs; r.s.counts.RxPackets < want; {
			n, err := r.s.bc.readBatch(r.s.msgs)
			if err != nil {
				b.Fatal(err)
			}
			r.s.serveBatch(n)
		}
	}
	step()
	// The loop runs on this goroutine, not the shard's: no signal to end a
	// wait at Close (callgrind's signal handling trips on it at random).
	r.s.bc.(*mmsgConn).tid.Store(-1)
	b.ReportAllocs()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i += sends * segs {
		step()
	}
	b.StopTimer()
	if c := r.s.counts; c.GROSegments[6] == 0 || c.RxPackets < uint64(b.N) {
		b.Fatalf("%d datagrams in buffers by size %v: the GRO path did not run", c.RxPackets, c.GROSegments)
	}
}
