package sink

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// lines returns n lines of different lengths ("k xxx...\n"), one of them
// longer than long bytes, and their concatenation.
func lines(n, long int) ([]byte, int) {
	var b []byte
	for k := 0; k < n; k++ {
		pad := k % 97
		if k == n/2 {
			pad = long
		}
		b = fmt.Appendf(b, "%d %s\n", k, strings.Repeat("x", pad))
	}
	return b, n
}

// drain takes every batch the queue holds (after a Flush, as the writer
// does) and releases it as written.
func drain(q *Queue) (out []byte, n int) {
	q.Flush()
	for {
		select {
		case b := <-q.Full():
			if !bytes.HasSuffix(b.Lines, []byte{'\n'}) || bytes.Count(b.Lines, []byte{'\n'}) != b.N {
				panic(fmt.Sprintf("batch of %d lines holds %q", b.N, b.Lines))
			}
			out, n = append(out, b.Lines...), n+b.N
			q.Release(b, b.N)
		default:
			return out, n
		}
	}
}

// TestQueueSplitsBatchesAtLines: the lines of one Write spread over as
// many batches as they need, split between whole lines, a line longer
// than a buffer in a batch of its own; every line comes out once, in order,
// and counts as written.
func TestQueueSplitsBatchesAtLines(t *testing.T) {
	q := NewQueue(Config{BufSize: 4096, QueueBytes: 1 << 20})
	p := q.NewProducer(3)
	var want []byte
	var got []byte
	total := 0
	for round := 0; round < 20; round++ {
		in, n := lines(50+round, 10000)
		p.Write(in, n)
		want, total = append(want, in...), total+n
		if round%3 == 0 {
			out, _ := drain(q)
			got = append(got, out...)
		}
	}
	out, _ := drain(q)
	got = append(got, out...)
	if !bytes.Equal(got, want) {
		t.Fatalf("lines out differ from lines in: %d bytes out, %d in", len(got), len(want))
	}
	st := q.Stats()
	if len(st) != 1 || st[0].Shard != 3 || st[0].Accepted != uint64(total) || st[0].Written != uint64(total) || st[0].DroppedTotal() != 0 || st[0].Queued() != 0 {
		t.Fatalf("stats %+v, want %d accepted and written", st, total)
	}
}

// TestQueueDropsWhatItHasNoMemoryFor: with the queue's memory spent, the
// lines left of a Write are dropped (queue_full) and accepted = written +
// dropped + queued; once the writer frees batches, lines are taken again.
func TestQueueDropsWhatItHasNoMemoryFor(t *testing.T) {
	q := NewQueue(Config{BufSize: 4096, QueueBytes: 16 << 10})
	p := q.NewProducer(0)
	in, n := lines(1000, 0) // about 50 KiB against 16 KiB
	p.Write(in, n)
	st := q.Stats()[0]
	if st.Dropped[DropQueueFull] == 0 || st.Accepted != uint64(n) || st.Queued()+st.DroppedTotal() != st.Accepted {
		t.Fatalf("stats %+v after writing %d lines into a full queue", st, n)
	}
	out, m := drain(q)
	if uint64(m) != st.Queued() || !bytes.HasPrefix(in, out) {
		t.Fatalf("drained %d lines, %d were queued; a prefix of the input: %v", m, st.Queued(), bytes.HasPrefix(in, out))
	}
	p.Write([]byte("again\n"), 1)
	if out, m := drain(q); m != 1 || string(out) != "again\n" {
		t.Fatalf("after the writer freed memory: %d lines %q", m, out)
	}
	if st := q.Stats()[0]; st.Accepted != st.Written+st.DroppedTotal() || st.Queued() != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDropReasonString: the reason labels of the dropped metric.
func TestDropReasonString(t *testing.T) {
	for r, want := range map[DropReason]string{DropQueueFull: "queue_full", DropShutdown: "shutdown", DropReason(9): "DropReason(9)"} {
		if r.String() != want {
			t.Errorf("%d: %q, want %q", r, r.String(), want)
		}
	}
}
