package syslog

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/packet/sink"
	"github.com/shardd/shardd/packet/sink/file"
)

// memSink keeps the lines written to it: the handler's tests look at what
// it hands a sink.
type memSink struct {
	mu    sync.Mutex
	lines []byte
	n     int
}

func (m *memSink) NewProducer(int) sink.Producer { return m }

func (m *memSink) Write(lines []byte, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lines = append(m.lines, lines...)
	m.n += n
}

// records decodes the lines written so far, failing on any that is not
// one JSON object.
func (m *memSink) records(t *testing.T) []map[string]any {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.SplitAfter(m.lines, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil || line[len(line)-1] != '\n' {
			t.Fatalf("not one JSON line: %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// serve hands msg to h as a batch of one: ServePacket, then Publish, as
// the shard calls them.
func serve(t testing.TB, h *Handler, msg []byte, proto packet.Proto) {
	t.Helper()
	p := packet.Packet{Data: msg, Src: netip.MustParseAddrPort("127.0.0.1:9"), Proto: proto}
	if err := h.ServePacket(nil, &p); err != nil {
		t.Fatal(err)
	}
	h.Publish()
}

// openFileSink opens a file sink that never syncs, for steady-state
// measurements of the whole path.
func openFileSink(t testing.TB) *file.Sink {
	t.Helper()
	s, err := file.Open(file.Config{Path: filepath.Join(t.TempDir(), "out.ndjson"), Fsync: file.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// TestHandlerAllocatesNothing: in steady state a message costs no
// allocation on the shard's goroutine (nor on the file sink's writer's).
func TestHandlerAllocatesNothing(t *testing.T) {
	h := NewServer(openFileSink(t)).NewHandler(0)
	msgs := seeds(t)
	p := packet.Packet{Src: netip.MustParseAddrPort("[2001:db8::1]:514"), Proto: packet.UDP}
	run := func() {
		for _, m := range msgs {
			p.Data = m
			_ = h.ServePacket(nil, &p)
		}
		h.Publish()
	}
	for i := 0; i < 2000; i++ { // warm up: buffers allocated once
		run()
	}
	if allocs := testing.AllocsPerRun(1000, run); allocs != 0 {
		t.Fatalf("%v allocations per %d messages", allocs, len(msgs))
	}
}

// benchHandler serves the RFC 5424 sample to a handler writing to a file
// sink, publishing after every batch messages as the shard does.
func benchHandler(b *testing.B, batch int) {
	msg, err := os.ReadFile("../../testdata/syslog/rfc5424.txt")
	if err != nil {
		b.Fatal(err)
	}
	h := NewServer(openFileSink(b)).NewHandler(0)
	p := packet.Packet{Data: bytes.TrimSpace(msg), Src: netip.MustParseAddrPort("127.0.0.1:514"), Proto: packet.UDP}
	b.ReportAllocs()
	b.SetBytes(int64(len(p.Data)))
	n := 0
	for b.Loop() {
		_ = h.ServePacket(nil, &p)
		if n++; n == batch {
			h.Publish()
			n = 0
		}
	}
	h.Publish()
}

// BenchmarkHandler: batches of 64 (the shard's default batch, as under load).
func BenchmarkHandler(b *testing.B) { benchHandler(b, 64) }

// BenchmarkHandlerBatchOfOne: every message a batch of its own (light load).
func BenchmarkHandlerBatchOfOne(b *testing.B) { benchHandler(b, 1) }

// TestHandlerBoundsLongMessages: a message of 4 MiB of control characters
// (a 24 MiB line if formatted whole) is cut to MaxMessage: its record says
// how much was cut, it is counted, and formatting it takes a few
// megabytes, not the whole line's size. A cut inside a UTF-8 character
// moves back to its start.
func TestHandlerBoundsLongMessages(t *testing.T) {
	out := &memSink{}
	srv := NewServer(out)
	h := srv.NewHandler(0)
	const prefix = "<13>1 - h a - - - "
	long := []byte(prefix + strings.Repeat("\x01", 4<<20))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	serve(t, h, long, packet.TCP)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 { // whole: 24 MiB and more
		t.Fatalf("formatting one long message allocated %d bytes", grew)
	}
	serve(t, h, []byte(prefix+"x"+strings.Repeat("é", MaxMessage)), packet.UDP) // a character across the limit
	serve(t, h, []byte(prefix+"short é"), packet.UDP)
	lines := out.records(t)
	if len(lines) != 3 {
		t.Fatalf("%d lines", len(lines))
	}
	if msg := lines[0]["message"].(string); lines[0]["truncated_bytes"] != float64(len(long)-MaxMessage) || len(msg) != MaxMessage-len(prefix) {
		t.Fatalf("truncated_bytes %v, message of %d bytes", lines[0]["truncated_bytes"], len(msg))
	}
	if msg := lines[1]["message"].(string); strings.ContainsRune(msg, utf8.RuneError) || len(msg) != MaxMessage-1-len(prefix) ||
		lines[1]["truncated_bytes"] != float64(len(prefix)+1+2*MaxMessage-(MaxMessage-1)) {
		t.Fatalf("cut in a character: truncated_bytes %v, message of %d bytes", lines[1]["truncated_bytes"], len(msg))
	}
	if _, ok := lines[2]["truncated_bytes"]; ok || lines[2]["message"] != "short é" {
		t.Fatalf("short message: %v", lines[2])
	}
	if st := srv.Stats()[0]; st.Truncated != 2 || out.n != 3 {
		t.Fatalf("truncated %d written %d", st.Truncated, out.n)
	}
}
