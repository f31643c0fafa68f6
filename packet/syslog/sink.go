package syslog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Fsync is when the sink makes written lines durable.
type Fsync uint8

// Fsync policies.
const (
	FsyncInterval Fsync = iota // fdatasync every Config.FsyncInterval if anything was written
	FsyncNever                 // leave it to the kernel's writeback
	FsyncAlways                // fdatasync after every batch, before it counts as written
)

// ParseFsync reads "never", "interval" or "always".
func ParseFsync(s string) (Fsync, bool) {
	switch s {
	case "interval":
		return FsyncInterval, true
	case "never":
		return FsyncNever, true
	case "always":
		return FsyncAlways, true
	}
	return 0, false
}

// Defaults of Config.
const (
	DefaultQueueBytes    = 64 << 20
	DefaultBufSize       = 256 << 10
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultFsyncInterval = time.Second
)

// Config is the sink's configuration; zero fields take the defaults.
type Config struct {
	// Path is the file to append to, or "-" for standard output.
	Path string
	// Fsync and FsyncInterval set durability (default: every second).
	Fsync         Fsync
	FsyncInterval time.Duration
	// QueueBytes bounds the memory of lines accepted and not yet written
	// (default 64 MiB). Past it, handlers drop and count (queue_full).
	QueueBytes int
	// BufSize is the size of one batch buffer (default 256 KiB): a shard
	// fills one, the writer writes it with one write(2).
	BufSize int
	// FlushInterval is how long a partly filled batch may wait (default 100ms).
	FlushInterval time.Duration
	Logger        *zap.Logger

	datasync func(*os.File) error // tests make it fail; default fdatasync
}

// Drop reasons.
const (
	DropQueueFull = iota // the queue was full when the message arrived
	DropShutdown         // not written before Close's deadline (the sink kept failing)
	numDropReasons
)

// DropReasonNames are the reason labels of shardd_syslog_dropped_total.
var DropReasonNames = [numDropReasons]string{"queue_full", "shutdown"}

// Sink error kinds.
const (
	ErrKindDiskFull   = iota // ENOSPC, EDQUOT
	ErrKindPermission        // EACCES, EPERM, EROFS
	ErrKindRemoved           // the file was removed or replaced under the sink
	ErrKindIO                // anything else
	numErrKinds
)

// ErrKindNames are the kind labels of shardd_syslog_sink_errors_total.
var ErrKindNames = [numErrKinds]string{"disk_full", "permission", "removed", "io"}

var errKindFixes = [numErrKinds]string{
	"free space on the sink's file system; the sink retries and writes what it queued",
	"let shardd's user write the sink file and its directory; the sink retries",
	"the sink creates the file again at its path",
	"check the file system; the sink retries",
}

// ErrNotAFile is returned by Reopen when the sink is standard output.
var ErrNotAFile = errors.New("the sink is standard output: nothing to reopen")

// batch is one buffer of complete lines from one handler.
type batch struct {
	buf []byte
	n   int // lines
	h   *Handler
	big bool // sized for one long line; not recycled
}

// Sink writes the lines of every Handler to one file from one goroutine, in
// batches, so lines never interleave. Memory is bounded by
// Config.QueueBytes.
type Sink struct {
	cfg Config
	log *zap.Logger

	mu       sync.Mutex // guards free, budget, handlers
	free     []*batch   // recycled buffers, most recently used last
	budget   int        // bytes of buffers that may still be allocated
	handlers []*Handler
	wcache   []*Handler // the writer's copy of handlers

	full     chan *batch
	reopenCh chan chan error
	closing  chan struct{}
	done     chan struct{}
	closeCtx context.Context // set by Close before it closes closing
	once     sync.Once

	// Owned by the writer goroutine.
	f         *os.File // nil after the file was found removed, until it is opened again
	stdout    bool
	id        fileID // of f
	dirty     bool
	lastSync  time.Time
	lastCheck time.Time
	logged    [numErrKinds]bool
	failing   bool
	timer     *time.Timer
	stopCtx   context.Context // closeCtx, once the writer has seen closing

	errs      [numErrKinds]atomic.Uint64
	reopens   atomic.Uint64
	allocated atomic.Int64
	writeLat  latency
	syncLat   latency
	closeDrop error
}

// Open opens the sink file (creating it, 0640, appending) and starts the
// writer. An error names the file and the fix.
func Open(cfg Config) (*Sink, error) {
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.BufSize <= 0 {
		cfg.BufSize = DefaultBufSize
	}
	if cfg.BufSize > cfg.QueueBytes {
		cfg.BufSize = cfg.QueueBytes
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.FsyncInterval <= 0 {
		cfg.FsyncInterval = DefaultFsyncInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.datasync == nil {
		cfg.datasync = datasync
	}
	s := &Sink{
		cfg:      cfg,
		log:      cfg.Logger,
		budget:   cfg.QueueBytes,
		full:     make(chan *batch, cfg.QueueBytes/cfg.BufSize+1),
		reopenCh: make(chan chan error),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
		timer:    time.NewTimer(time.Hour),
	}
	s.timer.Stop()
	if cfg.Path == "-" {
		s.f, s.stdout = os.Stdout, true
	} else {
		f, id, err := openSink(cfg.Path)
		if errors.Is(err, ErrSymlink) || errors.Is(err, ErrHardLink) || errors.Is(err, ErrNotRegular) || errors.Is(err, ErrNoReader) {
			return nil, fmt.Errorf("cannot open --sink %s: %w", cfg.Path, err)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot open --sink %s: %w; create its directory or let shardd's user write there, or pick another path", cfg.Path, unwrapPath(err))
		}
		s.f, s.id = f, id
	}
	s.lastSync, s.lastCheck = time.Now(), time.Now()
	go s.run()
	return s, nil
}

// openSink opens path for appending, creating it. It never blocks: a FIFO
// without a reader fails at once (ENXIO) instead of waiting for one. A
// symbolic link at path is refused (O_NOFOLLOW), and so is anything but a
// regular file with one name, a FIFO or a character device (see
// ErrHardLink, ErrNotRegular).
func openSink(path string) (*os.File, fileID, error) {
	f, id, err := openFile(path)
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fileID{}, ErrSymlink
		}
		return nil, fileID{}, err
	}
	return f, id, nil
}

// ErrHardLink is the error of a sink path whose file has other names. A
// sink file shardd created has one; a hard link planted in a directory that
// another user can write could name any file of the filesystem (where
// fs.protected_hardlinks does not stop it), so shardd does not append to a
// file with more than one name.
var ErrHardLink = errors.New("its file has more than one name (a hard link), and shardd does not append to a file with other names: give the path of a file with one name")

// ErrNotRegular is the error of a sink path that is neither a regular file,
// a FIFO nor a character device.
var ErrNotRegular = errors.New("it is not a regular file, a FIFO or a character device: give the path of a file")

// ErrNoReader is the error of a FIFO sink with no reader: shardd does not
// wait for one (opening it would block).
var ErrNoReader = errors.New("it is a FIFO with no reader, and shardd does not wait for one: start the reader first")

// ErrSymlink is the error of a sink path that is a symbolic link.
var ErrSymlink = errors.New("it is a symbolic link, and shardd does not write through one: give the path of a regular file (the link's target, if that is the file meant)")

// unwrapPath drops the *PathError wrapper (whose text repeats the path).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// NewHandler returns a handler whose lines go to this sink; shard labels
// its records and metrics.
func (s *Sink) NewHandler(shard int) *Handler {
	h := &Handler{s: s, shard: shard, scratch: make([]byte, 0, 4096)}
	s.mu.Lock()
	s.handlers = append(s.handlers, h)
	s.mu.Unlock()
	return h
}

// take returns an empty batch with room for n bytes, or nil if the queue's
// memory is spent.
func (s *Sink) take(h *Handler, n int) *batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= s.cfg.BufSize {
		if k := len(s.free); k > 0 {
			b := s.free[k-1]
			s.free[k-1] = nil
			s.free = s.free[:k-1]
			b.h = h
			return b
		}
		if s.budget < s.cfg.BufSize {
			return nil
		}
		s.budget -= s.cfg.BufSize
		s.allocated.Add(int64(s.cfg.BufSize))
		return &batch{buf: make([]byte, 0, s.cfg.BufSize), h: h}
	}
	// A line longer than a buffer gets a buffer of its own, paid for by
	// recycled buffers if need be.
	for s.budget < n && len(s.free) > 0 {
		s.free[len(s.free)-1] = nil
		s.free = s.free[:len(s.free)-1]
		s.budget += s.cfg.BufSize
		s.allocated.Add(-int64(s.cfg.BufSize))
	}
	if s.budget < n {
		return nil
	}
	s.budget -= n
	s.allocated.Add(int64(n))
	return &batch{buf: make([]byte, 0, n), h: h, big: true}
}

// recycle returns a written (or dropped) batch's memory.
func (s *Sink) recycle(b *batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.big {
		s.budget += cap(b.buf)
		s.allocated.Add(-int64(cap(b.buf)))
		return
	}
	b.buf, b.n, b.h = b.buf[:0], 0, nil
	s.free = append(s.free, b)
}

// submit queues a batch for the writer. The channel holds as many batches
// as the budget allows buffers, so it never blocks.
func (s *Sink) submit(b *batch) {
	s.full <- b
}

// Reopen makes the writer close the sink file and open its path again
// (SIGUSR1 after logrotate). If the path cannot be opened the old file
// stays in use and the error is returned.
func (s *Sink) Reopen() error {
	if s.stdout {
		return ErrNotAFile
	}
	reply := make(chan error, 1)
	select {
	case s.reopenCh <- reply:
	case <-s.done:
		return errors.New("the sink is closed")
	}
	return <-reply
}

// Close flushes every accepted line, syncs and closes the file. Call it
// after every handler has stopped. If ctx ends first (the sink keeps
// failing), what is still queued is dropped, counted (reason shutdown) and
// reported in the error.
func (s *Sink) Close(ctx context.Context) error {
	s.once.Do(func() {
		s.closeCtx = ctx
		close(s.closing)
	})
	<-s.done
	return s.closeDrop
}

func (s *Sink) run() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case b := <-s.full:
			s.write(b)
		case <-tick.C:
			s.collect()
			s.housekeep(false)
		case reply := <-s.reopenCh:
			reply <- s.reopen()
		case <-s.closing:
			s.stopCtx = s.closeCtx
			s.collect()
			for {
				select {
				case b := <-s.full:
					s.write(b)
					continue
				default:
				}
				break
			}
			s.housekeep(true)
			if !s.stdout && s.f != nil {
				_ = s.f.Close()
			}
			if n := s.dropsAtClose(); n > 0 {
				s.closeDrop = fmt.Errorf("the sink kept failing until the drain deadline: %d accepted messages were not written (counted in shardd_syslog_dropped_total{reason=\"shutdown\"}); fix the sink and raise --drain-timeout", n)
			}
			return
		}
	}
}

func (s *Sink) dropsAtClose() uint64 {
	var n uint64
	for _, h := range s.snapshotHandlers() {
		n += h.dropped[DropShutdown].Load()
	}
	return n
}

func (s *Sink) snapshotHandlers() []*Handler {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Handler(nil), s.handlers...)
}

// writerHandlers is snapshotHandlers for the writer goroutine, without an
// allocation per call once the handlers are all there.
func (s *Sink) writerHandlers() []*Handler {
	s.mu.Lock()
	if len(s.wcache) != len(s.handlers) {
		s.wcache = append(s.wcache[:0], s.handlers...)
	}
	s.mu.Unlock()
	return s.wcache
}

// collect queues every handler's partly filled batch, so lines wait at
// most FlushInterval. They go behind the handler's full batches: each
// handler's lines stay in order. The batch is queued under the handler's
// lock, as the handler queues its own: queued after the unlock, a batch
// the handler filled and queued meanwhile (its next lines) could go first.
func (s *Sink) collect() {
	for _, h := range s.writerHandlers() {
		h.mu.Lock()
		if b := h.cur; b != nil && b.n > 0 {
			h.cur = nil
			s.submit(b) // never blocks (see submit)
		}
		h.mu.Unlock()
	}
}

// write writes one batch, retrying with backoff while the sink fails. A
// partly written line is cut off the file again (ftruncate) before the
// retry, so the file only ever holds whole lines. A batch counts as written
// only once it is in the file at the sink's path: after each write the
// file is checked (fstat), and one that was removed meanwhile (no link
// left) is a failed write: the batch is written again to the file created
// anew at the path. With FsyncAlways it also needs its fdatasync.
func (s *Sink) write(b *batch) {
	off := 0
	backoff := 10 * time.Millisecond
	for {
		wait := backoff
		if s.f == nil {
			if err := s.openAgain(); err != nil {
				s.fail(err)
			}
		}
		if s.f != nil {
			start := time.Now()
			if s.id.fifo {
				_ = s.f.SetWriteDeadline(start.Add(fifoWriteWait))
			}
			n, err := s.f.Write(b.buf[off:])
			if n > 0 {
				s.dirty = true
			}
			switch {
			case s.id.fifo && errors.Is(err, os.ErrDeadlineExceeded):
				// The FIFO's reader is not reading: no error, but a
				// reopen or a stop is served before the write goes on.
				off += n
				wait = time.Millisecond
			case err != nil:
				off = s.cutTornLine(b.buf, off, n)
				s.fail(err)
			case s.unlinked():
				// Written to a file that is no longer anywhere: it went
				// with the file. Open the path again and write it there.
				s.fail(&removedError{path: s.cfg.Path})
				_ = s.f.Close()
				s.f, s.dirty, off = nil, false, 0
				if s.openAgain() == nil {
					continue
				}
			case s.cfg.Fsync == FsyncAlways && s.sync() != nil:
				// Not durable, so not written: cut what this write added
				// and write it again (a second fdatasync after a failed
				// one may report success for data the kernel dropped).
				s.writeLat.observe(time.Since(start))
				off = s.cutUnsynced(off, n)
			default:
				s.writeLat.observe(time.Since(start))
				b.h.written.Add(uint64(b.n))
				s.recovered()
				s.recycle(b)
				return
			}
		}
		if s.stopCtx != nil && s.stopCtx.Err() != nil {
			s.dropRest(b, off)
			return
		}
		// Wait for the backoff; a reopen is served meanwhile, and a stop
		// bounds the retries by Close's context.
		var stopping, ctxDone <-chan struct{}
		if s.stopCtx == nil {
			stopping = s.closing
		} else {
			ctxDone = s.stopCtx.Done()
		}
		s.timer.Reset(wait)
		select {
		case <-s.timer.C:
		case reply := <-s.reopenCh:
			s.timer.Stop()
			reply <- s.reopen()
		case <-stopping:
			s.timer.Stop()
			s.stopCtx = s.closeCtx
		case <-ctxDone:
			s.timer.Stop()
		}
		if wait == backoff {
			backoff = min(2*backoff, time.Second)
		}
	}
}

// fifoWriteWait bounds one write to a FIFO sink, so that a reader that has
// stopped reading delays a reopen (SIGUSR1) or a stop by at most this long.
const fifoWriteWait = 500 * time.Millisecond

// unlinked reports whether the open sink file has been removed (its last
// name is gone): what is written to it is lost.
func (s *Sink) unlinked() bool {
	if s.stdout {
		return false
	}
	id, err := statFile(s.f)
	return err == nil && id.nlink == 0
}

// cutUnsynced truncates the n bytes a write appended at off when their
// fdatasync failed, and returns the offset to write again from. If they
// cannot be cut they stay, and only the sync is retried.
func (s *Sink) cutUnsynced(off, n int) int {
	if n == 0 || s.stdout {
		return off + n
	}
	if id, err := statFile(s.f); err == nil && id.size >= int64(n) && s.f.Truncate(id.size-int64(n)) == nil {
		return off
	}
	return off + n
}

// cutTornLine handles a write that failed after n of buf[off:]'s bytes: the
// complete lines among them count as written (they stay), the torn last one
// is truncated off the file. It returns the offset to go on from.
func (s *Sink) cutTornLine(buf []byte, off, n int) int {
	if n <= 0 {
		return off
	}
	end := off + n
	lineStart := bytes.LastIndexByte(buf[:end], '\n') + 1
	if lineStart < off {
		lineStart = off // torn line started in this write... before off it was complete
	}
	if torn := end - lineStart; torn > 0 && !s.stdout {
		if id, err := statFile(s.f); err == nil && id.size >= int64(torn) {
			if s.f.Truncate(id.size-int64(torn)) == nil {
				return lineStart
			}
		}
		// Could not cut it: the line is there in part; write the rest
		// after it rather than a second copy.
		return end
	}
	if s.stdout {
		return end
	}
	return lineStart
}

// dropRest counts a batch's unwritten lines as dropped at shutdown.
func (s *Sink) dropRest(b *batch, off int) {
	done := bytes.Count(b.buf[:off], []byte{'\n'})
	b.h.written.Add(uint64(done))
	b.h.dropped[DropShutdown].Add(uint64(b.n - done))
	s.recycle(b)
}

// housekeep syncs on the fsync interval (or at the end) and notices a sink
// file removed or replaced under it.
func (s *Sink) housekeep(final bool) {
	now := time.Now()
	if s.dirty && s.cfg.Fsync != FsyncNever && (final || now.Sub(s.lastSync) >= s.cfg.FsyncInterval) {
		s.sync()
	}
	if s.stdout || s.f == nil || final || now.Sub(s.lastCheck) < time.Second {
		return
	}
	s.lastCheck = now
	if id, err := statPath(s.cfg.Path); err == nil && id.same(s.id) {
		return
	}
	s.fail(&removedError{path: s.cfg.Path})
	if err := s.openAgain(); err != nil {
		s.fail(err)
	}
}

type removedError struct{ path string }

func (e *removedError) Error() string {
	return "sink file " + e.path + " was removed or replaced"
}

// sync makes what was written durable; a failure is counted and returned.
func (s *Sink) sync() error {
	if s.f == nil {
		return nil
	}
	start := time.Now()
	err := s.cfg.datasync(s.f)
	if errors.Is(err, syscall.EINVAL) { // a pipe or terminal: nothing to sync
		s.dirty = false
		return nil
	}
	if err != nil {
		s.fail(err)
		return err
	}
	s.syncLat.observe(time.Since(start))
	s.dirty, s.lastSync = false, time.Now()
	return nil
}

// openAgain opens the sink path, replacing the current file.
func (s *Sink) openAgain() error {
	f, id, err := openSink(s.cfg.Path)
	if err != nil {
		return err
	}
	if s.f != nil {
		if s.dirty && s.cfg.Fsync != FsyncNever {
			_ = s.sync()
		}
		_ = s.f.Close()
	}
	s.f, s.id, s.dirty = f, id, false
	return nil
}

func (s *Sink) reopen() error {
	if err := s.openAgain(); errors.Is(err, ErrSymlink) || errors.Is(err, ErrHardLink) || errors.Is(err, ErrNotRegular) || errors.Is(err, ErrNoReader) {
		return fmt.Errorf("cannot reopen --sink %s: %w; the old file stays in use", s.cfg.Path, err)
	} else if err != nil {
		return fmt.Errorf("cannot reopen --sink %s: %w; the old file stays in use; fix the path and send SIGUSR1 again", s.cfg.Path, unwrapPath(err))
	}
	s.reopens.Add(1)
	return nil
}

// fail counts a sink error and logs the first of each kind until the sink
// recovers.
func (s *Sink) fail(err error) {
	k := errKind(err)
	s.errs[k].Add(1)
	s.failing = true
	if !s.logged[k] {
		s.logged[k] = true
		s.log.Error("sink error; retrying (logged once per kind until it recovers)",
			zap.String("sink", s.cfg.Path), zap.String("kind", ErrKindNames[k]), zap.Error(err),
			zap.String("fix", errKindFixes[k]))
	}
}

// recovered ends a failure after a successful write: once the file written
// is the one at the sink's path (a write into a removed or replaced file
// is no recovery).
func (s *Sink) recovered() {
	if !s.failing {
		return
	}
	if !s.stdout {
		id, err := statPath(s.cfg.Path)
		if err != nil || !id.same(s.id) || id.nlink == 0 {
			return
		}
	}
	s.failing = false
	s.logged = [numErrKinds]bool{}
	s.log.Info("sink recovered; writing again", zap.String("sink", s.cfg.Path))
}

func errKind(err error) int {
	var re *removedError
	switch {
	case errors.As(err, &re), errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ESTALE):
		return ErrKindRemoved
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return ErrKindDiskFull
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EROFS):
		return ErrKindPermission
	}
	return ErrKindIO
}

// latency is a small fixed-bucket histogram written by the writer goroutine
// and read at scrape time.
type latency struct {
	counts [len(latencyBounds) + 1]atomic.Uint64
	sumNs  atomic.Uint64
}

// latencyBounds are the histogram's upper bounds in seconds.
var latencyBounds = [...]float64{1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1}

func (l *latency) observe(d time.Duration) {
	sec := d.Seconds()
	i := 0
	for i < len(latencyBounds) && sec > latencyBounds[i] {
		i++
	}
	l.counts[i].Add(1)
	l.sumNs.Add(uint64(d.Nanoseconds()))
}
