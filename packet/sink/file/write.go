package file

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/shardd/shardd/packet/sink"
)

// fifoWriteWait bounds one write to a FIFO sink, so that a reader that has
// stopped reading delays a reopen (SIGUSR1) or a stop by at most this long.
const fifoWriteWait = 500 * time.Millisecond

// attempt is what one try at writing a batch came to.
type attempt uint8

const (
	attemptWritten attempt = iota // the batch is in the file (and synced if need be)
	attemptAgain                  // try again at once (the file was opened anew)
	attemptWait                   // try again after the backoff
	attemptStalled                // a FIFO's reader is not reading: try again soon
)

// write writes one batch, retrying with backoff while the sink fails. A
// partly written line is cut off the file again (ftruncate) before the
// retry, so the file only ever holds whole lines. A batch counts as written
// only once it is in the file at the sink's path: after each write the
// file is checked (fstat), and one that was removed meanwhile (no link
// left) is a failed write: the batch is written again to the file created
// anew at the path. With FsyncAlways it also needs its fdatasync.
func (s *Sink) write(b *sink.Batch) {
	off := 0
	backoff := 10 * time.Millisecond
	for {
		var a attempt
		off, a = s.try(b, off)
		switch a {
		case attemptWritten:
			s.q.Release(b, b.N)
			return
		case attemptAgain:
			continue
		}
		if ctx := s.stopCtx(); ctx != nil && ctx.Err() != nil {
			// Count the lines written so far; the rest are dropped.
			s.q.Release(b, bytes.Count(b.Lines[:off], []byte{'\n'}))
			return
		}
		if a == attemptStalled {
			s.pause(time.Millisecond)
			continue
		}
		s.pause(backoff)
		backoff = min(2*backoff, time.Second)
	}
}

// try writes b.Lines[off:] once and returns the offset to go on from.
func (s *Sink) try(b *sink.Batch, off int) (int, attempt) {
	if s.f == nil {
		if err := s.openAgain(); err != nil {
			s.fail(err)
			return off, attemptWait
		}
	}
	start := time.Now()
	if s.id.fifo {
		_ = s.f.SetWriteDeadline(start.Add(fifoWriteWait))
	}
	n, err := s.f.Write(b.Lines[off:])
	if n > 0 {
		s.dirty = true
	}
	switch {
	case s.id.fifo && errors.Is(err, os.ErrDeadlineExceeded):
		// The FIFO's reader is not reading: no error, but a reopen or a
		// stop is served before the write goes on.
		return off + n, attemptStalled
	case err != nil:
		off = s.cutTornLine(b.Lines, off, n)
		s.fail(err)
		return off, attemptWait
	case s.unlinked():
		// Written to a file that is no longer anywhere: it went with the
		// file. Open the path again and write it there.
		s.fail(&removedError{path: s.cfg.Path})
		_ = s.f.Close()
		s.f, s.dirty = nil, false
		if s.openAgain() == nil {
			return 0, attemptAgain
		}
		return 0, attemptWait
	case s.cfg.Fsync == FsyncAlways && s.sync() != nil:
		// Not durable, so not written: cut what this write added and
		// write it again (a second fdatasync after a failed one may
		// report success for data the kernel dropped).
		s.writeLat.Observe(time.Since(start))
		return s.cutUnsynced(off, n), attemptWait
	}
	s.writeLat.Observe(time.Since(start))
	s.recovered()
	return off + n, attemptWritten
}

// pause waits d before a retry; a reopen is served meanwhile, and a stop
// bounds the retries by Close's context.
func (s *Sink) pause(d time.Duration) {
	var stopping, ctxDone <-chan struct{}
	if ctx := s.stopCtx(); ctx == nil {
		stopping = s.stop.Requested
	} else {
		ctxDone = ctx.Done()
	}
	s.timer.Reset(d)
	select {
	case <-s.timer.C:
	case reply := <-s.reopenCh:
		s.timer.Stop()
		reply <- s.reopen()
	case <-stopping:
		s.timer.Stop()
	case <-ctxDone:
		s.timer.Stop()
	}
}

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

// housekeep syncs on the fsync interval (or at the end) and notices a sink
// file removed or replaced under it.
func (s *Sink) housekeep(final bool) {
	now := time.Now()
	if s.dirty && s.cfg.Fsync != FsyncNever && (final || now.Sub(s.lastSync) >= s.cfg.FsyncInterval) {
		_ = s.sync()
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
	s.syncLat.Observe(time.Since(start))
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
	if err := s.openAgain(); refused(err) {
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
			zap.String("sink", s.cfg.Path), zap.String("kind", k.String()), zap.Error(err),
			zap.String("fix", k.fix()))
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
	s.logged = [ErrKinds]bool{}
	s.log.Info("sink recovered; writing again", zap.String("sink", s.cfg.Path))
}
