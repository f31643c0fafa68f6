package shard

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/shardd/shardd/packet"
)

// lpEcho echoes length-prefixed messages (DNS framing) so the benchmark
// covers the framer path as well as the raw stream.
type lpEcho struct {
	packet.Echo
	packet.LengthPrefixed
}

// BenchmarkTCPRoundTrip measures one message (op) through a shard's TCP
// path on loopback, in both shapes: the client writes a burst of messages
// on one connection and reads every reply back before the next burst.
// allocs/op counts the client and the shard together.
func BenchmarkTCPRoundTrip(b *testing.B) {
	for _, shape := range []TCPShape{TCPShapeLoop, TCPShapeGoroutines} {
		for _, tc := range []struct {
			name  string
			h     packet.Handler
			size  int // message bytes
			burst int // messages per write
		}{
			{"raw-64B", packet.Echo{}, 64, 1},
			{"lp-64B-x1", lpEcho{}, 64, 1},
			{"lp-64B-x32", lpEcho{}, 64, 32},
			{"lp-1KB-x32", lpEcho{}, 1024, 32},
		} {
			b.Run(shape.String()+"/"+tc.name, func(b *testing.B) {
				g, err := Listen(Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shape,
					NewHandler: func(int) packet.Handler { return tc.h }})
				if err != nil {
					b.Fatal(err)
				}
				go func() { _ = g.Serve(context.Background()) }()
				b.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					_ = g.Shutdown(ctx)
				})
				c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(int(g.Info().Bound.Port()))))
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				var out []byte
				for i := 0; i < tc.burst; i++ {
					msg := make([]byte, tc.size)
					if _, ok := tc.h.(packet.Framer); ok {
						out = packet.LengthPrefixed{}.AppendFrame(out, msg)
					} else {
						out = append(out, msg...)
					}
				}
				in := make([]byte, len(out))
				step := func() {
					if _, err := c.Write(out); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, in); err != nil {
						b.Fatal(err)
					}
				}
				_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
				for i := 0; i < 100; i++ {
					step()
				}
				b.ReportAllocs()
				b.SetBytes(int64(tc.size))
				b.ResetTimer()
				for i := 0; i < b.N; i += tc.burst {
					step()
				}
			})
		}
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// BenchmarkTCPServeBytes measures the per-message TCP serving path alone,
// no system calls: a burst of 32 length-prefixed 64-byte messages framed,
// served by an echo handler and their replies framed into the reply queue
// and accounted as written (op: one message).
func BenchmarkTCPServeBytes(b *testing.B) {
	cfg, err := Config{Addr: "127.0.0.1:0", TCP: true}.resolve(1)
	if err != nil {
		b.Fatal(err)
	}
	t := newTCPShard(0, &cfg, nil, lpEcho{})
	var in []byte
	const burst = 32
	for i := 0; i < burst; i++ {
		in = packet.LengthPrefixed{}.AppendFrame(in, make([]byte, 64))
	}
	var cb connBuf
	src := netip.MustParseAddrPort("127.0.0.1:40000")
	b.ReportAllocs()
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i += burst {
		consumed, msgs, blocked, ferr := t.serveBytes(in, src, &cb, false)
		if consumed != len(in) || msgs != burst || blocked || ferr != nil {
			b.Fatalf("served %d bytes, %d msgs, blocked %v: %v", consumed, msgs, blocked, ferr)
		}
		t.wrote(&cb, len(cb.out))
	}
}
