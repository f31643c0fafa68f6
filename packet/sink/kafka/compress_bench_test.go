package kafka

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/shardd/shardd/packet/syslog"
)

// syslogBatch is about size bytes of record values as the syslog handler
// writes them (RFC 5424 messages from 50 hosts, varied text), concatenated
// as in a Kafka record batch.
func syslogBatch(size int) []byte {
	var out, line []byte
	now := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)
	for i := 0; len(out) < size; i++ {
		msg := fmt.Sprintf("<%d>1 2026-11-30T14:00:%02d.%06dZ web%02d.example.net nginx %d - [req@32473 id=\"%x\"] GET /api/v1/items/%d 200 %d bytes in %d ms",
			8+i%16, i%60, i*7919%1000000, i%50, 1000+i%300, i*2654435761, i%5000, 200+i*31%9000, i%97)
		var r syslog.Record
		syslog.Parse([]byte(msg), now, &r)
		o := syslog.Origin{Received: now.Add(time.Duration(i) * time.Microsecond), From: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i % 50), 1}), 514), Shard: i % 2, Proto: "udp"}
		line = syslog.AppendJSON(line[:0], &r, &o)
		out = append(out, line[:len(line)-1]...)
	}
	return out
}

// BenchmarkCompression compresses 64 KiB of syslog records as franz-go
// does (its zstd and lz4 writers, default levels; zstd with franz-go's
// options), reporting the compressed share of the input (ratio%).
func BenchmarkCompression(b *testing.B) {
	in := syslogBatch(64 << 10)
	b.Run("lz4", func(b *testing.B) {
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			buf.Reset()
			w.Reset(&buf)
			_, _ = w.Write(in)
			_ = w.Close()
		}
		b.ReportMetric(100*float64(buf.Len())/float64(len(in)), "ratio%")
	})
	b.Run("zstd", func(b *testing.B) {
		enc, err := zstd.NewWriter(nil, zstd.WithWindowSize(64<<10), zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
		if err != nil {
			b.Fatal(err)
		}
		var out []byte
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			out = enc.EncodeAll(in, out[:0])
		}
		b.ReportMetric(100*float64(len(out))/float64(len(in)), "ratio%")
	})
}
