// Package file is the sink that appends lines to a file (or standard
// output) durably: one goroutine writes the batches of a sink.Queue, so
// lines never interleave; a partly written line is cut off again, a file
// removed or replaced under it is created again at its path, and the file
// is reopened on request (logrotate). A symbolic link, a hard link or a
// FIFO without a reader at the path is refused.
package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/shardd/shardd/packet/sink"
)

// Fsync is when the sink makes written lines durable.
type Fsync uint8

// Fsync policies.
const (
	FsyncInterval Fsync = iota // fdatasync every Config.FsyncInterval if anything was written
	FsyncNever                 // leave it to the kernel's writeback
	FsyncAlways                // fdatasync after every batch, before it counts as written
)

// String returns the policy's name: interval, never, always.
func (f Fsync) String() string {
	switch f {
	case FsyncInterval:
		return "interval"
	case FsyncNever:
		return "never"
	case FsyncAlways:
		return "always"
	}
	return fmt.Sprintf("Fsync(%d)", uint8(f))
}

// ParseFsync reads "never", "interval" or "always".
func ParseFsync(s string) (Fsync, bool) {
	for f := FsyncInterval; f <= FsyncAlways; f++ {
		if f.String() == s {
			return f, true
		}
	}
	return 0, false
}

// DefaultFsyncInterval is the default of Config.FsyncInterval.
const DefaultFsyncInterval = time.Second

// Config is the sink's configuration; zero fields take the defaults.
type Config struct {
	// Path is the file to append to, or "-" for standard output.
	Path string
	// Fsync and FsyncInterval set durability (default: every second).
	Fsync         Fsync
	FsyncInterval time.Duration
	// Queue sizes the memory of lines accepted and not yet written, and
	// names the metrics.
	Queue  sink.Config
	Logger *zap.Logger

	datasync func(*os.File) error // tests make it fail; default fdatasync
}

// ErrNotAFile is returned by Reopen when the sink is standard output.
var ErrNotAFile = errors.New("the sink is standard output: nothing to reopen")

// Sink writes the lines of every producer to one file from one goroutine,
// in batches, so lines never interleave. Memory is bounded by
// Config.Queue.QueueBytes. It implements sink.Sink.
type Sink struct {
	cfg Config
	log *zap.Logger
	q   *sink.Queue

	descErrors, descReopens, descWrite, descSync *prometheus.Desc // nameMetrics

	reopenCh chan chan error
	stop     *sink.Stop

	// Owned by the writer goroutine.
	f         *os.File // nil after the file was found removed, until it is opened again
	stdout    bool
	id        fileID // of f
	dirty     bool
	lastSync  time.Time
	lastCheck time.Time
	logged    [ErrKinds]bool
	failing   bool
	timer     *time.Timer

	errs     [ErrKinds]atomic.Uint64
	reopens  atomic.Uint64
	writeLat sink.Latency
	syncLat  sink.Latency
}

// Open opens the sink file (creating it, 0640, appending) and starts the
// writer. An error names the file and the fix.
func Open(cfg Config) (*Sink, error) {
	if cfg.FsyncInterval <= 0 {
		cfg.FsyncInterval = DefaultFsyncInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.datasync == nil {
		cfg.datasync = datasync
	}
	q := sink.NewQueue(cfg.Queue)
	cfg.Queue = q.Config()
	s := &Sink{
		cfg:      cfg,
		log:      cfg.Logger,
		q:        q,
		reopenCh: make(chan chan error),
		stop:     sink.NewStop(),
		timer:    time.NewTimer(time.Hour),
	}
	s.timer.Stop()
	s.nameMetrics()
	if cfg.Path == "-" {
		s.f, s.stdout = os.Stdout, true
	} else {
		f, id, err := openSink(cfg.Path)
		if refused(err) {
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

// NewProducer implements sink.Sink.
func (s *Sink) NewProducer(shard int) sink.Producer { return s.q.NewProducer(shard) }

// Stats returns the queue's counters per shard (see sink.Queue.Stats).
func (s *Sink) Stats() []sink.Stats { return s.q.Stats() }

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
	case <-s.stop.Done:
		return errors.New("the sink is closed")
	}
	return <-reply
}

// Close flushes every accepted line, syncs and closes the file. Call it
// after every producer has stopped. If ctx ends first (the sink keeps
// failing), what is still queued is dropped, counted (reason shutdown) and
// reported in the error.
func (s *Sink) Close(ctx context.Context) error { return s.stop.Close(ctx) }

// run is the writer goroutine: it writes full batches as they come, takes
// partly filled ones every flush interval, serves reopens, and at Close
// writes what is left.
func (s *Sink) run() {
	defer close(s.stop.Done)
	tick := time.NewTicker(s.cfg.Queue.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case b := <-s.q.Full():
			s.write(b)
		case <-tick.C:
			s.q.Flush()
			s.housekeep(false)
		case reply := <-s.reopenCh:
			reply <- s.reopen()
		case <-s.stop.Requested:
			s.drain()
			return
		}
	}
}

// stopCtx is Close's context once Close was called, else nil.
func (s *Sink) stopCtx() context.Context {
	select {
	case <-s.stop.Requested:
		return s.stop.Ctx
	default:
		return nil
	}
}

// drain writes every queued batch, syncs and closes the file.
func (s *Sink) drain() {
	s.q.Drain(s.write)
	s.housekeep(true)
	if !s.stdout && s.f != nil {
		_ = s.f.Close()
	}
	if n := s.q.Dropped(sink.DropShutdown); n > 0 {
		s.stop.Err = fmt.Errorf("the sink kept failing until the drain deadline: %d accepted messages were not written (counted in %s_dropped_total{reason=\"shutdown\"}); fix the sink and raise --drain-timeout", n, s.cfg.Queue.Metrics)
	}
}

var _ sink.Sink = (*Sink)(nil)
