package sink

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSettle: a batch settled with lines written and dropped by several
// reasons counts each; what it leaves unaccounted counts as shutdown, and
// Dropped sums a reason over the producers; accepted = written + dropped.
func TestSettle(t *testing.T) {
	q := NewQueue(Config{QueueBytes: 1 << 20, BufSize: 4096})
	p0, p1 := q.NewProducer(0), q.NewProducer(1)
	p0.Write([]byte("a\nb\nc\nd\ne\nf\n"), 6)
	p1.Write([]byte("g\nh\n"), 2)
	var batches []*Batch
	q.Drain(func(b *Batch) { batches = append(batches, b) })
	if len(batches) != 2 {
		t.Fatalf("%d batches drained, want 2", len(batches))
	}
	var d [DropReasons]int
	d[DropTooLarge], d[DropRejected] = 1, 2
	q.Settle(batches[0], 2, &d) // 6 lines: 2 written, 1 too large, 2 rejected, 1 left: shutdown
	q.Settle(batches[1], 1, &[DropReasons]int{DropShutdown: 0, DropTooLarge: 1})
	st := q.Stats()
	if st[0].Written != 2 || st[0].Dropped != [DropReasons]uint64{DropShutdown: 1, DropTooLarge: 1, DropRejected: 2} || st[0].Queued() != 0 {
		t.Fatalf("shard 0: %+v", st[0])
	}
	if st[1].Written != 1 || st[1].DroppedTotal() != 1 || st[1].Queued() != 0 {
		t.Fatalf("shard 1: %+v", st[1])
	}
	if q.Dropped(DropTooLarge) != 2 || q.Dropped(DropShutdown) != 1 || q.Dropped(DropQueueFull) != 0 {
		t.Fatalf("Dropped: too_large %d shutdown %d", q.Dropped(DropTooLarge), q.Dropped(DropShutdown))
	}
	for r, want := range []string{"queue_full", "shutdown", "too_large", "rejected"} {
		if DropReason(r).String() != want {
			t.Errorf("DropReason(%d) = %s, want %s", r, DropReason(r), want)
		}
	}
}

// TestStop: Close asks once (the first context stays), waits for the
// writer's end and returns its outcome to every caller.
func TestStop(t *testing.T) {
	s := NewStop()
	errWriter := errors.New("writer outcome")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.Requested
		if s.Ctx != ctx {
			panic("Ctx is not the first Close's")
		}
		s.Err = errWriter
		close(s.Done)
	}()
	done := make(chan error, 2)
	go func() { done <- s.Close(ctx) }()
	<-s.Requested
	go func() { done <- s.Close(context.Background()) }()
	for range 2 {
		select {
		case err := <-done:
			if err != errWriter {
				t.Fatalf("Close = %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Close did not return")
		}
	}
}
