//go:build unix

package shard

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/metrics"
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
		t.Run(shapeOf(loop).String(), func(t *testing.T) {
			var ts atomic.Pointer[tcpShard]
			var peak atomic.Int64
			g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop),
				NewHandler: func(int) packet.Handler { return usedProbe{ts: &ts, max: &peak} }})
			ts.Store(g.tcp[0])
			c := dialTCP(t, tcpAddr(g))
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

// TestTCPEvictionSparesBusyConnections: on a full shard, a new connection
// evicts an idle one, never one whose replies are queued (a client that is
// slow to read: eviction resets it and its replies are lost), even if that
// one completed its last message earlier.
func TestTCPEvictionSparesBusyConnections(t *testing.T) {
	for _, loop := range []bool{true, false} {
		t.Run(shapeOf(loop).String(), func(t *testing.T) {
			g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop),
				MaxConns: 2, MaxConnsPerIP: 10, WriteTimeout: time.Minute, NewHandler: func(int) packet.Handler { return amplifier{} }})
			ts := g.tcp[0]
			// A: pipelines requests and does not read yet: replies queue.
			// A small receive buffer set before the connect (set after it,
			// the kernel's window stalls the stream).
			dialer := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			}}
			a, err := dialer.Dial("tcp", tcpAddr(g))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			req := packet.LengthPrefixed{}.AppendFrame(nil, []byte("q"))
			_ = a.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := a.Write(bytes.Repeat(req, 4000)); err != nil { // 16 MB of replies: more than the kernel buffers
				t.Fatal(err)
			}
			// Until A is stuck: replies queued and no message served for a while
			// (so that its last message is older than B's below).
			waitFor(t, "A stuck with replies queued", func() bool {
				before, _ := tcpStats(g)
				time.Sleep(300 * time.Millisecond)
				after, _ := tcpStats(g)
				return ts.mem.used.Load() > 0 && before.RxPackets == after.RxPackets
			})
			// B: one exchange, then idle; its last message is later than A's.
			b := dialTCP(t, tcpAddr(g))
			exchangeTCP(t, b, req)
			// C: retried until it evicts someone (after evictIdle).
			var cs []net.Conn
			defer func() {
				for _, c := range cs {
					c.Close()
				}
			}()
			waitFor(t, "a connection evicted", func() bool {
				if total, _ := tcpStats(g); total.Closed[metrics.CloseEvicted] == 1 {
					return true
				}
				if c, err := net.Dial("tcp", tcpAddr(g)); err == nil {
					cs = append(cs, c)
				}
				time.Sleep(50 * time.Millisecond)
				total, _ := tcpStats(g)
				return total.Closed[metrics.CloseEvicted] == 1
			})
			// B was the one: its next exchange fails; A reads all its replies.
			_ = b.SetDeadline(time.Now().Add(30 * time.Second))
			_, _ = b.Write(req)
			if _, err := b.Read(make([]byte, 1)); err == nil {
				t.Fatal("B (idle) still served: the busy connection A was evicted instead")
			}
			_ = a.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, err := io.CopyN(io.Discard, a, 4000*(2+4096))
			_ = n
			if err != nil {
				total, _ := tcpStats(g)
				t.Fatalf("A (replies queued) read %d of %d bytes of replies: %v (evicted?); closed %v, rx %d tx %d unsent %d, held %d", n, 4000*(2+4096), err, total.Closed, total.RxPackets, total.TxPackets, total.UnsentPackets, ts.mem.used.Load())
			}
		})
	}
}

// exchangeTCP sends one length-prefixed request on c and reads its reply.
func exchangeTCP(t *testing.T, c net.Conn, req []byte) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint16(hdr[:]))); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Time{})
}
