package shard

import (
	"net"
	"net/netip"
	"testing"

	"github.com/shardd/shardd/packet"
)

// loopRig drives one shard's loop synchronously on the calling goroutine:
// a client sends a batch with sendmmsg, the shard reads, serves and replies,
// and the client reads the replies back. The same body serves the allocation
// test and the benchmark.
type loopRig struct {
	s       *shard
	client  *net.UDPConn
	tx      batchConn
	batch   []packet.Reply
	rxBuf   []byte
	echo    bool
	perStep int
}

func newLoopRig(tb testing.TB, listen string, h packet.Handler, perStep, size int) *loopRig {
	tb.Helper()
	g, err := Listen(Config{Addr: listen, Shards: 1, Batch: perStep, NewHandler: func(int) packet.Handler { return h }})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = g.Close() })
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { client.Close() })
	unused := make([]rxMsg, perStep) // the client only sends, but slots need buffers
	for i := range unused {
		unused[i].buf = make([]byte, 1)
	}
	crc, _ := client.SyscallConn()
	tx, err := newMmsgConn(crc, client.LocalAddr(), unused, false)
	if err != nil {
		tb.Skip("no batched I/O here:", err)
	}
	r := &loopRig{s: g.shards[0], client: client, tx: tx, rxBuf: make([]byte, 65536), perStep: perStep}
	_, r.echo = h.(packet.Echo)
	payload := make([]byte, size)
	for i := 0; i < perStep; i++ {
		r.batch = append(r.batch, packet.Reply{Data: payload, Dst: to})
	}
	return r
}

// step pushes perStep datagrams through the shard and, for echo, reads every reply.
func (r *loopRig) step(tb testing.TB) {
	if failed, err := r.tx.writeBatch(r.batch, nil); failed != 0 || err != nil {
		tb.Fatalf("client: %d of %d not sent: %v", failed, r.perStep, err)
	}
	for got := 0; got < r.perStep; {
		n, err := r.s.bc.readBatch(r.s.msgs)
		if err != nil {
			tb.Fatal(err)
		}
		r.s.serveBatch(n)
		got += n
	}
	if !r.echo {
		return
	}
	for i := 0; i < r.perStep; i++ {
		if _, _, err := r.client.ReadFromUDPAddrPort(r.rxBuf); err != nil {
			tb.Fatal(err)
		}
	}
}

// loopCases are the handlers and listeners the allocation tests drive.
var loopCases = []struct {
	name, listen string
	h            packet.Handler
}{
	{"echo", "127.0.0.1:0", packet.Echo{}},
	{"discard", "127.0.0.1:0", packet.Discard{}},
	{"echo-wildcard-pktinfo", ":0", packet.Echo{}},
}

func TestShardLoopAllocatesNothing(t *testing.T) {
	for _, tc := range loopCases {
		t.Run(tc.name, func(t *testing.T) {
			r := newLoopRig(t, tc.listen, tc.h, 32, 64)
			r.step(t) // warm up; AllocsPerRun adds one more warm-up run of its own
			if allocs := testing.AllocsPerRun(50, func() { r.step(t) }); allocs != 0 {
				t.Fatalf("%v allocations per batch of %d datagrams, want 0", allocs, r.perStep)
			}
			c := r.s.ctr.Load()
			if c.RxPackets != 52*32 || (r.echo && c.TxPackets != c.RxPackets) {
				t.Fatalf("counters after the run: %+v", c)
			}
			// The echo replies of a batch go to one client: the GSO path
			// (grouping, UDP_SEGMENT) is what ran.
			if r.echo && c.TxGSODatagrams == 0 {
				t.Fatalf("no reply sent by GSO, want some (counters %+v)", c)
			}
		})
	}
}

// BenchmarkShardLoop measures one datagram (op) through the real loop: the
// client's share of sendmmsg, the shard's recvmmsg, handler and sendmmsg, and
// for echo the client's read of the reply.
func BenchmarkShardLoop(b *testing.B) {
	for _, tc := range []struct {
		name string
		h    packet.Handler
		size int
	}{
		{"discard-64B", packet.Discard{}, 64},
		{"echo-64B", packet.Echo{}, 64},
		{"echo-512B", packet.Echo{}, 512},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const perStep = 64
			r := newLoopRig(b, "127.0.0.1:0", tc.h, perStep, tc.size)
			r.step(b)
			b.ReportAllocs()
			b.SetBytes(int64(tc.size))
			b.ResetTimer()
			for i := 0; i < b.N; i += perStep {
				r.step(b)
			}
		})
	}
}

// BenchmarkServeBatch measures the handler path alone: a full batch of
// received slots served into the reply writer, no system calls.
func BenchmarkServeBatch(b *testing.B) {
	for _, tc := range []struct {
		name string
		h    packet.Handler
	}{{"echo", packet.Echo{}}, {"discard", packet.Discard{}}} {
		b.Run(tc.name, func(b *testing.B) {
			const batch = 64
			cfg, _ := Config{Addr: "127.0.0.1:0", Batch: batch, MaxPacket: 2048, NewHandler: func(int) packet.Handler { return tc.h }}.resolve(1)
			s := &shard{handler: tc.h, replies: packet.NewReplyQueue(batch, batch*cfg.MaxPacket, cfg.MaxPacket), msgs: make([]rxMsg, batch)}
			src := netip.MustParseAddrPort("127.0.0.1:40000")
			for i := range s.msgs {
				s.msgs[i] = rxMsg{buf: make([]byte, cfg.MaxPacket+1), src: src}
				s.msgs[i].set(64, 0)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				for j := range s.msgs {
					s.msgs[j].set(64, 0) // as a receive does: serving consumes the slot
				}
				for j := 0; j < batch; {
					j = s.serveFrom(j, batch)
				}
				s.replies.Reset()
			}
		})
	}
}
