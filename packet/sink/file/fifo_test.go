//go:build linux

package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/packet/sink"
)

// TestAttackSinkHardLink: a hard link planted at the sink path (to a file
// another user cares about) is refused by Open and by Reopen; the linked
// file is untouched and the records go on into the sink's own file.
func TestAttackSinkHardLink(t *testing.T) {
	attackLink(t, os.Link, ErrHardLink)
	t.Logf("attack: hard link at the sink path: refused by Open and Reopen, the linked file untouched")
}

// TestAttackSinkFIFONoReader: a FIFO nobody reads, planted at the sink
// path, never blocks: Open fails at once (ErrNoReader), and so does Reopen;
// the automatic re-creation of a replaced file retries without blocking the
// writer, so a reopen and Close still return.
func TestAttackSinkFIFONoReader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.ndjson")
	mkfifo := func() error { return syscall.Mkfifo(path, 0o600) }
	t.Cleanup(func() { // an Open still blocked in open(2) gets its reader
		if fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			time.Sleep(100 * time.Millisecond)
			syscall.Close(fd)
		}
	})
	openRefused(t, path, mkfifo, ErrNoReader)
	s, h := rotateOnto(t, path, mkfifo)
	// The writer notices the replaced file (within about a second) and
	// tries to open the FIFO.
	waitFor(t, func() bool { return s.errs[ErrKindRemoved].Load() > 0 })
	h.put("two")
	if err := within(t, "Reopen onto a FIFO with no reader", 10*time.Second, s.Reopen); !errors.Is(err, ErrNoReader) {
		t.Fatalf("Reopen onto a FIFO with no reader: %v; want ErrNoReader", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = within(t, "Close", 10*time.Second, func() error { return s.Close(ctx) })
	wantRecords(t, path+".1", 2)
	t.Logf("attack: FIFO without a reader at the sink path: Open and Reopen refuse it at once, re-creation retries; nothing blocked")
}

// TestSinkFIFOStalledReader: a FIFO sink whose reader stops reading fills
// the pipe and stalls the writer. A reopen (SIGUSR1) and a stop still
// return, and every message is accounted: received = written + dropped,
// with written = the lines the reader gets.
func TestSinkFIFOStalledReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sink.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	rfd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	rf := os.NewFile(uintptr(rfd), path)
	defer rf.Close()
	// Only full batches (256 KiB) are written until Close: the first
	// fills the pipe to its 64 KiB. (Partly filled batches, taken every
	// millisecond, could leave the pipe's pages partly used and the pipe
	// full with less than 60 KiB in it.)
	s, _ := openSinkT(t, Config{Path: path, Queue: sink.Config{FlushInterval: time.Hour, QueueBytes: 1 << 20}})
	h := newProducer(s, 0)
	const n = 2000 // about 400 kB against a 64 KiB pipe
	for i := 0; i < n; i++ {
		h.put(fmt.Sprintf("record %d %s", i, strings.Repeat("y", 150)))
	}
	// The pipe is full: the writer is blocked on it.
	waitFor(t, func() bool { k, err := unix.IoctlGetInt(rfd, unix.TIOCINQ); return err == nil && k >= 60<<10 })
	if err := within(t, "Reopen while the writer is stalled", 10*time.Second, s.Reopen); err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cerr := within(t, "Close while the writer is stalled", 10*time.Second, func() error { return s.Close(ctx) })
	received, written, dropped := total(s)
	buf := make([]byte, 1<<20)
	var got []byte
	for {
		k, err := rf.Read(buf)
		if k > 0 {
			got = append(got, buf[:k]...)
		}
		if err != nil || k == 0 {
			break
		}
	}
	lines := strings.Count(string(got), "\n")
	if received != n || received != written+dropped || uint64(lines) != written || dropped == 0 || cerr == nil {
		t.Fatalf("received %d of %d, written %d, dropped %d, lines read %d, Close: %v", received, n, written, dropped, lines, cerr)
	}
	t.Logf("stalled FIFO reader: reopen and stop returned; received %d = written %d + dropped %d; lines read %d", received, written, dropped, lines)
}
