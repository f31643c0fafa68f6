package shard

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	runtimemetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/packet"
)

// amplifier answers every length-prefixed request with a 4 KiB reply: the
// shape of a DNS query for a large RRset.
type amplifier struct{ packet.LengthPrefixed }

var bigReply = bytes.Repeat([]byte("A"), 4096)

func (amplifier) ServePacket(w *packet.ReplyWriter, p *packet.Packet) error {
	_, err := w.Write(bigReply)
	return err
}

// heapObjects is the heap's object bytes (live and not yet collected).
func heapObjects() int64 {
	s := []runtimemetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	runtimemetrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// TestAttackTCPShardBudget: non-reading clients that pipeline amplifying
// requests never make a shard hold more than --max-shard-memory (sampled
// all along), they are cut by --write-timeout, every request answered is
// either written or counted unsent, and a well-behaved client is served
// once they are gone.
func TestAttackTCPShardBudget(t *testing.T) {
	for _, loop := range []bool{true, false} {
		t.Run(shapeOf(loop).String(), func(t *testing.T) {
			budget := 2 * MinConnMemory(DefaultMaxFrame)
			g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop),
				MaxConnMemory: MinConnMemory(DefaultMaxFrame), MaxShardMemory: budget, WriteTimeout: time.Second,
				NewHandler: func(int) packet.Handler { return amplifier{} }})
			ts := g.tcp[0]
			// A real measurement besides the budget's own count: the live
			// heap (after a GC) before, and sampled (after a GC) all along.
			runtime.GC()
			heapBase := heapObjects()
			var peak, heapPeak atomic.Int64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				for i := 0; ; i++ {
					if u := ts.mem.used.Load(); u > peak.Load() {
						peak.Store(u)
					}
					if i%50 == 0 {
						runtime.GC()
						if h := heapObjects(); h > heapPeak.Load() {
							heapPeak.Store(h)
						}
					}
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
				}
			}()
			req := bytes.Repeat(packet.LengthPrefixed{}.AppendFrame(nil, []byte("q")), 20000) // 60 KB asking for 80 MB
			const hogs = 6
			var wg sync.WaitGroup
			for i := 0; i < hogs; i++ {
				c := dialTCP(t, tcpAddr(g))
				_ = c.(*net.TCPConn).SetReadBuffer(4096)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < 100; j++ {
						_ = c.SetWriteDeadline(time.Now().Add(60 * time.Second)) // a hang guard: the daemon cuts each hog
						if _, err := c.Write(req); err != nil {
							return
						}
					}
				}()
			}
			// The budget serves two hogs at a time; the others wait (they
			// read nothing) until those are cut, then take their turn.
			deadline := time.Now().Add(60 * time.Second)
			for {
				total, _ := tcpStats(g)
				if total.Closed[metrics.CloseWriteTimeout] == hogs {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 60s %d of %d hogs were cut by --write-timeout: %v", total.Closed[metrics.CloseWriteTimeout], hogs, total.Closed)
				}
				time.Sleep(20 * time.Millisecond)
			}
			wg.Wait()
			// A client that reads its replies is served.
			c := dialTCP(t, tcpAddr(g))
			_, _ = c.Write(packet.LengthPrefixed{}.AppendFrame(nil, []byte("q")))
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			var hdr [2]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil || binary.BigEndian.Uint16(hdr[:]) != 4096 {
				t.Fatalf("a reading client after the attack: %v (length %d)", err, binary.BigEndian.Uint16(hdr[:]))
			}
			close(stop)
			<-sampled
			c.Close()
			waitFor(t, "every connection closed", func() bool { total, _ := tcpStats(g); return total.Active() == 0 })
			s := ts.ctr.Load()
			t.Logf("attack: %s: %d non-reading clients asking for 4 KiB replies: shard held at most %d KiB (--max-shard-memory %d KiB); %d answered, %d written, %d unsent at the write timeout",
				shapeOf(loop), hogs, peak.Load()>>10, budget>>10, s.RxPackets, s.TxPackets, s.UnsentPackets)
			if peak.Load() > int64(budget) {
				t.Fatalf("the shard held %d bytes, over --max-shard-memory %d", peak.Load(), budget)
			}
			// The live heap (daemon side and this test's clients) holds the
			// budget, the loop's fixed buffers and the clients' own: a
			// connection that buffered every reply (80 MB per hog here)
			// would break this bound at once.
			heapBound := heapBase + int64(budget) + 2<<20
			t.Logf("attack: %s: live heap %d KiB before, at most %d KiB during (bound %d KiB)", shapeOf(loop), heapBase>>10, heapPeak.Load()>>10, heapBound>>10)
			if heapPeak.Load() > heapBound {
				t.Fatalf("the live heap reached %d bytes, over %d (baseline %d + budget %d + 2 MiB)", heapPeak.Load(), heapBound, heapBase, budget)
			}
			if peak.Load() < int64(MinConnMemory(DefaultMaxFrame))/2 {
				t.Fatalf("the shard held at most %d bytes: the attack did not load it", peak.Load())
			}
			if s.RxPackets != s.TxPackets+s.UnsentPackets || s.UnsentPackets == 0 {
				t.Fatalf("%d answered, %d written, %d unsent: every reply must be written or counted unsent (and the hogs left some)", s.RxPackets, s.TxPackets, s.UnsentPackets)
			}
			if u := ts.mem.used.Load(); u != 0 {
				t.Fatalf("%d bytes still held with no connection open", u)
			}
		})
	}
}
