package shard

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/packet"
)

// panicEcho echoes length-prefixed messages and panics on "panic".
type panicEcho struct{ packet.LengthPrefixed }

func (panicEcho) ServePacket(w *packet.ReplyWriter, p *packet.Packet) error {
	if string(p.Data) == "panic" {
		panic("handler bug")
	}
	return packet.Echo{}.ServePacket(w, p)
}

// TestTCPPanicKeepsEarlierRepliesCounted sends three messages in one write,
// the middle one making the handler panic: the replies to the other two
// are written and must count as sent (shardd_tx_packets_total), the panic
// as a handler error, in both shapes.
func TestTCPPanicKeepsEarlierRepliesCounted(t *testing.T) {
	for _, loop := range []bool{true, false} {
		t.Run(shapeOf(loop).String(), func(t *testing.T) {
			g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop),
				NewHandler: func(int) packet.Handler { return panicEcho{} }})
			c, err := net.Dial("tcp", tcpAddr(g))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var req []byte
			for _, m := range []string{"first", "panic", "last"} {
				req = packet.LengthPrefixed{}.AppendFrame(req, []byte(m))
			}
			if _, err := c.Write(req); err != nil {
				t.Fatal(err)
			}
			_ = c.(*net.TCPConn).CloseWrite()
			_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for _, m := range []string{"first", "last"} {
				want = packet.LengthPrefixed{}.AppendFrame(want, []byte(m))
			}
			if string(got) != string(want) {
				t.Fatalf("replies %q, want %q", got, want)
			}
			var s metrics.Snapshot
			waitFor(t, "the connection closed", func() bool {
				for _, st := range g.Stats(nil) {
					if st.Proto == "tcp" {
						s = st
					}
				}
				return s.Closed[metrics.CloseEOF] == 1
			})
			if s.RxPackets != 3 || s.HandlerErrors != 1 || s.TxPackets != 2 || s.TxBytes != uint64(len("first")+len("last")) || s.UnsentPackets != 0 {
				t.Fatalf("rx %d, handler errors %d, tx %d (%d bytes), unsent %d; want 3, 1, 2 (9 bytes), 0",
					s.RxPackets, s.HandlerErrors, s.TxPackets, s.TxBytes, s.UnsentPackets)
			}
			t.Logf("rx %d, handler errors %d, tx %d", s.RxPackets, s.HandlerErrors, s.TxPackets)
		})
	}
}
