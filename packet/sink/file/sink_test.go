package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/shardd/shardd/packet/sink"
)

func openSinkT(t *testing.T, cfg Config) (*Sink, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	cfg.Logger = zap.New(core)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // bounded: a test that failed may leave the sink failing
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s, logs
}

// producer is a handler's side of a sink in these tests: it writes one
// record per message, as a batch of one line.
type producer struct {
	p     sink.Producer
	shard int
}

func newProducer(s *Sink, shard int) *producer {
	return &producer{p: s.NewProducer(shard), shard: shard}
}

// put writes msg as one record (the size of a syslog handler's).
func (p *producer) put(msg string) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	line := fmt.Appendf(nil, `{"received":%q,"from":"127.0.0.1:9","shard":%d,"proto":"udp","format":"rfc5424","hostname":"h","message":%q}`+"\n", now, p.shard, msg)
	p.p.Write(line, 1)
}

// readLines returns the sink file's records, failing on any line that is
// not one whole JSON object.
func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s ends in a partial line", path)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("corrupt line %q: %v", sc.Bytes(), err)
		}
		out = append(out, m)
	}
	return out
}

func total(s *Sink) (received, written, dropped uint64) {
	for _, st := range s.Stats() {
		received += st.Accepted
		written += st.Written
		dropped += st.DroppedTotal()
	}
	return
}

// TestSinkKeepsEveryLineInOrder: handlers on several goroutines at once;
// every line arrives whole, once, and each handler's lines in order.
func TestSinkKeepsEveryLineInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	s, _ := openSinkT(t, Config{Path: path, Queue: sink.Config{BufSize: 4096, FlushInterval: time.Millisecond}}) // the queue holds it all
	const handlers, perHandler = 4, 3000
	var wg sync.WaitGroup
	for i := 0; i < handlers; i++ {
		h := newProducer(s, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < perHandler; n++ {
				h.put(fmt.Sprintf("seq %d %s", n, strings.Repeat("x", n%300)))
				if n%500 == 0 {
					time.Sleep(2 * time.Millisecond) // let the flush timer take partial batches too
				}
			}
		}()
	}
	wg.Wait()
	closeOK(t, s)
	lines := readLines(t, path)
	next := map[float64]int{}
	for _, m := range lines {
		sh := m["shard"].(float64)
		want := fmt.Sprintf("seq %d ", next[sh])
		if !strings.HasPrefix(m["message"].(string), want) {
			t.Fatalf("shard %v: got %q, want it to start with %q", sh, m["message"], want)
		}
		next[sh]++
	}
	if len(lines) != handlers*perHandler {
		t.Fatalf("%d lines, want %d", len(lines), handlers*perHandler)
	}
	if r, w, d := total(s); r != handlers*perHandler || w != r || d != 0 {
		t.Fatalf("received %d written %d dropped %d", r, w, d)
	}
}

// TestSinkFullDisk: /dev/full fails every write with ENOSPC. The queue
// fills and drops are counted; the error is logged once; at Close the
// queued lines are dropped for shutdown, so received = written + dropped.
func TestSinkFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	s, logs := openSinkT(t, Config{Path: "/dev/full", Queue: sink.Config{BufSize: 4096, QueueBytes: 64 << 10, FlushInterval: time.Millisecond}})
	h := newProducer(s, 0)
	const n = 2000
	for i := 0; i < n; i++ {
		h.put(fmt.Sprintf("message %d", i))
	}
	// Close once the writer failed and retried: on a loaded machine it may
	// not have tried at all yet, and the assertions below are about retries.
	waitFor(t, func() bool { return s.errs[ErrKindDiskFull].Load() >= 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "were not written") {
		t.Fatalf("Close: %v", err)
	}
	st := s.Stats()[0]
	if st.Accepted != n || st.Written != 0 || st.Written+st.DroppedTotal() != n {
		t.Fatalf("received %d written %d dropped %v", st.Accepted, st.Written, st.Dropped)
	}
	if st.Dropped[sink.DropQueueFull] == 0 || st.Dropped[sink.DropShutdown] == 0 {
		t.Fatalf("want drops of both reasons: %v", st.Dropped)
	}
	if s.errs[ErrKindDiskFull].Load() < 2 {
		t.Fatalf("disk_full errors %d, want retries counted", s.errs[ErrKindDiskFull].Load())
	}
	wantLogged(t, logs, "sink error", 1) // one per kind
}

// TestSinkReopen: after a rename (logrotate) and Reopen, lines go to a new
// file at the path; none is lost or split between the two.
func TestSinkReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.ndjson")
	s, _ := openSinkT(t, Config{Path: path, Queue: sink.Config{FlushInterval: time.Millisecond}})
	h := newProducer(s, 0)
	for i := 0; i < 100; i++ {
		h.put(fmt.Sprintf("before %d", i))
	}
	waitFor(t, func() bool { _, w, _ := total(s); return w == 100 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		h.put(fmt.Sprintf("after %d", i))
	}
	closeOK(t, s)
	if old, cur := readLines(t, path+".1"), readLines(t, path); len(old) != 100 || len(cur) != 50 || cur[0]["message"] != "after 0" {
		t.Fatalf("rotated file %d lines, new file %d lines", len(old), len(cur))
	}
	if s.reopens.Load() != 1 {
		t.Fatalf("reopens %d", s.reopens.Load())
	}
}

// TestSinkRecreatesARemovedFile: a sink file removed under the daemon is
// noticed within about a second, counted, and created again.
func TestSinkRecreatesARemovedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	s, logs, h := openWritten(t, Config{Path: path, Queue: sink.Config{FlushInterval: 10 * time.Millisecond}}, "one")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, err := os.Stat(path); return err == nil })
	h.put("two")
	closeOK(t, s)
	if lines := readLines(t, path); len(lines) != 1 || lines[0]["message"] != "two" {
		t.Fatalf("recreated file: %v", lines)
	}
	if s.errs[ErrKindRemoved].Load() != 1 || logs.FilterField(zap.String("kind", "removed")).Len() != 1 {
		t.Fatalf("removed errors %d, logs %v", s.errs[ErrKindRemoved].Load(), logs.All())
	}
}

func TestOpenErrorNamesTheFix(t *testing.T) {
	_, err := Open(Config{Path: filepath.Join(t.TempDir(), "missing", "out.ndjson")})
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") || !strings.Contains(err.Error(), "create its directory") {
		t.Fatalf("Open: %v", err)
	}
}

// openWritten opens a sink as openSinkT does, writes the record first
// and waits until it is in the file.
func openWritten(t *testing.T, cfg Config, first string) (*Sink, *observer.ObservedLogs, *producer) {
	t.Helper()
	s, logs := openSinkT(t, cfg)
	h := newProducer(s, 0)
	h.put(first)
	waitFor(t, func() bool { _, w, _ := total(s); return w == 1 })
	return s, logs, h
}

// closeOK closes s and fails the test if anything was not written.
func closeOK(t *testing.T, s *Sink) {
	t.Helper()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// wantMessages checks that path holds exactly the records format % 0..n-1, in order.
func wantMessages(t *testing.T, path, format string, n int) {
	t.Helper()
	lines := readLines(t, path)
	if len(lines) != n {
		t.Fatalf("%d lines in %s, want %d", len(lines), path, n)
	}
	for i, m := range lines {
		if m["message"] != fmt.Sprintf(format, i) {
			t.Fatalf("line %d: %v", i, m["message"])
		}
	}
}

// wantLogged checks that want lines containing snippet were logged.
func wantLogged(t *testing.T, logs *observer.ObservedLogs, snippet string, want int) {
	t.Helper()
	if got := logs.FilterMessageSnippet(snippet).Len(); got != want {
		t.Fatalf("%d %q lines, want %d:\n%v", got, snippet, want, logs.All())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // only a hang reaches it
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 60s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSinkRemovedAndNotCreatable: the sink's directory is removed, so the
// file cannot be created again. Nothing is written into the removed file
// and counted: the queue fills (queue_full), the rest is dropped at Close
// (shutdown), received = written + dropped with written = what reached the
// file before, and the error is logged once, without "recovered" lines.
func TestSinkRemovedAndNotCreatable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "out.ndjson")
	s, logs, h := openWritten(t, Config{Path: path, Queue: sink.Config{BufSize: 4096, QueueBytes: 64 << 10, FlushInterval: time.Millisecond}}, "before")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	const n = 3000 // about 400 KiB of lines against a 64 KiB queue
	for i := 0; i < n; i++ {
		h.put(fmt.Sprintf("after %d", i))
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	// Close once the failures the assertions below count have happened.
	waitFor(t, func() bool { return s.errs[ErrKindRemoved].Load() >= 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); err == nil || !strings.Contains(err.Error(), "were not written") {
		t.Fatalf("Close: %v", err)
	}
	st := s.Stats()[0]
	if st.Accepted != n+1 || st.Written != 1 || st.Written+st.DroppedTotal() != st.Accepted ||
		st.Dropped[sink.DropQueueFull] == 0 || st.Dropped[sink.DropShutdown] == 0 {
		t.Fatalf("received %d written %d dropped %v", st.Accepted, st.Written, st.Dropped)
	}
	if s.errs[ErrKindRemoved].Load() < 2 {
		t.Fatalf("removed errors %d, want the failed writes and opens counted", s.errs[ErrKindRemoved].Load())
	}
	wantLogged(t, logs, "sink error", 1)
	wantLogged(t, logs, "recovered", 0)
}

// TestSinkRemovedLogsOnceUntilRecovered: while the removed file cannot be
// created again, the error is logged once per kind (not again every second);
// once the directory is back the sink recovers, logs it once and writes
// every queued line, in order, to the new file.
func TestSinkRemovedLogsOnceUntilRecovered(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "out.ndjson")
	s, logs, h := openWritten(t, Config{Path: path, Queue: sink.Config{FlushInterval: 10 * time.Millisecond}}, "before")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	const n = 60
	for i := 0; i < n; i++ {
		h.put(fmt.Sprintf("after %d", i))
	}
	// Eight failed attempts: retries with a backoff doubling from 10 ms,
	// so the last ones are a second apart (was a 3 s sleep, which a loaded
	// machine could end before any attempt, and then nothing was logged).
	waitFor(t, func() bool {
		var failed uint64
		for k := range s.errs {
			failed += s.errs[k].Load()
		}
		return failed >= 8
	})
	if _, w, _ := total(s); w != 1 {
		t.Fatalf("written %d while the sink file was gone, want 1", w)
	}
	wantLogged(t, logs, "sink error", 1) // while it failed
	wantLogged(t, logs, "recovered", 0)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, w, _ := total(s); return w == n+1 })
	closeOK(t, s)
	wantMessages(t, path, "after %d", n) // the new file
	wantLogged(t, logs, "recovered", 1)
}

// TestSinkNoLossRightAfterRemove: a line accepted right after the sink file
// is removed (before the once-a-second check) is not written into the
// removed file: it is in the file created again at the path.
func TestSinkNoLossRightAfterRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	s, _, h := openWritten(t, Config{Path: path, Queue: sink.Config{FlushInterval: 10 * time.Millisecond}}, "one")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	h.put("two")
	closeOK(t, s)
	if lines := readLines(t, path); len(lines) != 1 || lines[0]["message"] != "two" {
		t.Fatalf("file at the path: %v", lines)
	}
	if r, w, d := total(s); r != 2 || w != 2 || d != 0 {
		t.Fatalf("received %d written %d dropped %d", r, w, d)
	}
}

// TestSinkFsyncAlwaysFailure: with FsyncAlways a batch whose fdatasync
// fails is not written: it is cut off the file and written again, so once
// the sync succeeds each line is in the file exactly once.
func TestSinkFsyncAlwaysFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	var failing atomic.Bool
	failing.Store(true)
	cfg := Config{Path: path, Fsync: FsyncAlways, Queue: sink.Config{FlushInterval: time.Millisecond}}
	cfg.datasync = func(f *os.File) error {
		if failing.Load() {
			return syscall.EIO
		}
		return datasync(f)
	}
	s, logs := openSinkT(t, cfg)
	h := newProducer(s, 0)
	for i := 0; i < 10; i++ {
		h.put(fmt.Sprintf("line %d", i))
	}
	waitFor(t, func() bool { return s.errs[ErrKindIO].Load() >= 3 })
	if _, w, _ := total(s); w != 0 {
		t.Fatalf("written %d while fdatasync failed, want 0", w)
	}
	failing.Store(false)
	waitFor(t, func() bool { _, w, _ := total(s); return w == 10 })
	closeOK(t, s)
	wantMessages(t, path, "line %d", 10)
	wantLogged(t, logs, "recovered", 1)
}
