package shard

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardd/shardd/packet"
)

// TestWaitFreeWaitsForWhatIsNeeded: a waiter for n bytes does not return
// while fewer than n are free (a caller that retries its reservation then
// would spin), and returns once they are.
func TestWaitFreeWaitsForWhatIsNeeded(t *testing.T) {
	m := newTCPMem(1000)
	if !m.reserve(990) {
		t.Fatal("reserve 990 of 1000")
	}
	// 10 bytes free, 100 needed, nothing released: the deadline passes.
	if m.waitFree(100, time.Now().Add(100*time.Millisecond), nil) {
		t.Fatalf("waitFree(100) returned true with %d bytes free", m.free())
	}
	done := make(chan int64)
	go func() {
		ok := m.waitFree(100, time.Now().Add(60*time.Second), nil)
		if !ok {
			done <- -1
			return
		}
		done <- m.free()
	}()
	waitFor(t, "the waiter registered", func() bool { return m.waiters.Load() == 1 })
	m.release(5) // wakes it, but 15 < 100: it must wait on
	m.release(200)
	if free := <-done; free < 100 {
		t.Fatalf("waitFree(100) returned with %d bytes free", free)
	}
}

// usedProbe answers like amplifier and records how much of the shard's
// budget is reserved while a message is served.
type usedProbe struct {
	packet.LengthPrefixed
	ts  *atomic.Pointer[tcpShard]
	max *atomic.Int64
}

func (p usedProbe) ServePacket(w *packet.ReplyWriter, _ *packet.Packet) error {
	if ts := p.ts.Load(); ts != nil {
		if u := ts.mem.used.Load(); u > p.max.Load() {
			p.max.Store(u)
		}
	}
	_, err := w.Write(bigReply)
	return err
}

// TestTCPReservesPerMessage: serving one small request reserves its input
// buffer and one message's replies, not the connection's whole reply limit
// (goroutine shape; the loop shape reserves nothing for replies it writes
// at once).
func TestTCPReservesPerMessage(t *testing.T) {
	for _, loop := range []bool{true, false} {
		t.Run(shapeOf(loop), func(t *testing.T) {
			var ts atomic.Pointer[tcpShard]
			var peak atomic.Int64
			g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop),
				NewHandler: func(int) packet.Handler { return usedProbe{ts: &ts, max: &peak} }})
			ts.Store(g.tcp[0])
			c, err := net.Dial("tcp", tcpAddr(g))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i := 0; i < 3; i++ {
				_, _ = c.Write(packet.LengthPrefixed{}.AppendFrame(nil, []byte("q")))
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				buf := make([]byte, 2+len(bigReply))
				if _, err := io.ReadFull(c, buf); err != nil || binary.BigEndian.Uint16(buf) != 4096 || !bytes.Equal(buf[2:], bigReply) {
					t.Fatalf("reply %d: %v", i, err)
				}
			}
			limit := int64(readBuf + g.tcp[0].replyMax)
			t.Logf("%s: at most %d bytes reserved while serving one request (read buffer + one message's replies = %d; the connection's reply limit is %d)",
				shapeOf(loop), peak.Load(), limit, g.tcp[0].outMax)
			if peak.Load() == 0 && !loop {
				t.Fatal("nothing reserved while serving: the probe did not run")
			}
			if peak.Load() > limit {
				t.Fatalf("%d bytes reserved to serve one small request, over %d (read buffer + one message's replies)", peak.Load(), limit)
			}
		})
	}
}
