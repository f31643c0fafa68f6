package shard

import (
	"testing"

	"github.com/shardd/shardd/packet"
)

// BenchmarkShardLoopPktinfo is BenchmarkShardLoop's echo on a wildcard
// (dual-stack) listener, where every datagram carries PKTINFO control
// messages that the receive path parses and every reply sets its source.
func BenchmarkShardLoopPktinfo(b *testing.B) {
	const perStep = 64
	r := newLoopRig(b, ":0", packet.Echo{}, perStep, 64)
	r.step(b)
	b.ReportAllocs()
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i += perStep {
		r.step(b)
	}
}
