package shard

import (
	"testing"

	"github.com/shardd/shardd/packet"
)

// BenchmarkShardLoopGSO is BenchmarkShardLoop's echo, with the shard's
// replies grouped (GSO, the default where the kernel has it) and sent one
// datagram each (gso off), side by side: one op is one datagram through the
// client's sendmmsg, the shard's recvmmsg, handler and reply, and the
// client's read of it (one read per reply, as the client has no GRO).
func BenchmarkShardLoopGSO(b *testing.B) {
	for _, size := range []int{64, 512} {
		for _, gso := range []bool{true, false} {
			name := map[bool]string{true: "on", false: "off"}[gso]
			b.Run(name+"/"+map[int]string{64: "64B", 512: "512B"}[size], func(b *testing.B) {
				const perStep = 64
				r := newLoopRig(b, "127.0.0.1:0", packet.Echo{}, perStep, size)
				r.s.bc.(*mmsgConn).gso = gso
				r.step(b)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				b.ResetTimer()
				for i := 0; i < b.N; i += perStep {
					r.step(b)
				}
				b.StopTimer()
				if c := r.s.ctr.Load(); gso != (c.TxGSODatagrams > 0) {
					b.Fatalf("gso %v, yet %d replies went by GSO", gso, c.TxGSODatagrams)
				}
			})
		}
	}
}
