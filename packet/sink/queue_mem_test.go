package sink

import (
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestQueueBufferBytes: the queue_buffer_bytes gauge is the memory of the
// batch buffers the queue has made: a buffer taken counts, a recycled one
// still counts (it is kept for reuse), a buffer of one long line counts
// until it is released, and a long line that needs the recycled buffers'
// room lets them go.
func TestQueueBufferBytes(t *testing.T) {
	const buf = 4096
	q := NewQueue(Config{BufSize: buf, QueueBytes: 4 * buf, Metrics: "test_sink"})
	gauge := func(want int) {
		t.Helper()
		const head = "# HELP test_sink_queue_buffer_bytes Memory of the sink's batch buffers (bounded by --sink-queue).\n# TYPE test_sink_queue_buffer_bytes gauge\n"
		exp := head + "test_sink_queue_buffer_bytes " + strconv.Itoa(want) + "\n"
		if err := testutil.CollectAndCompare(q, strings.NewReader(exp), "test_sink_queue_buffer_bytes"); err != nil {
			t.Fatal(err)
		}
	}
	gauge(0)
	p := q.NewProducer(0)
	p.Write([]byte("short\n"), 1)
	gauge(buf)
	drain(q)
	gauge(buf) // recycled, kept for reuse
	long := strings.Repeat("x", 3*buf) + "\n"
	p.Write([]byte(long), 1) // needs 3*buf+1: the recycled buffer is let go
	gauge(3*buf + 1)
	if _, n := drain(q); n != 1 {
		t.Fatalf("drained %d lines, want 1", n)
	}
	gauge(0)
}
