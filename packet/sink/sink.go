// Package sink is where handlers' output goes: a handler formats each
// message as one line and hands the lines of a batch to its shard's
// [Producer]; the sink writes them somewhere (a file: package
// [github.com/shardd/shardd/packet/sink/file]) without losing what it
// accepted, or drops and counts what it has no memory for.
//
// A handler sees a sink only through [Sink] and [Producer]. An
// implementation builds on [Queue]: the producers' batches of whole lines
// in a bounded amount of memory, a channel of full batches for its writer,
// and the accounting every sink reports (accepted = written + dropped +
// queued) with its metrics.
package sink

import (
	"strconv"
	"time"
)

// Sink is a destination for lines, as a handler sees it.
type Sink interface {
	// NewProducer returns a new producer for one handler of shard (shard
	// labels its metrics; the producers of one shard are summed).
	NewProducer(shard int) Producer
}

// Producer is one handler's way into a sink. Its methods are called by one
// goroutine at a time (the shard's), and never block.
type Producer interface {
	// Write queues lines, n complete lines each ending in '\n', behind
	// the producer's earlier ones; the lines of one producer are written
	// in order and never interleave with another's. It does not keep
	// lines. Lines the queue has no memory for are dropped and counted
	// (DropQueueFull).
	Write(lines []byte, n int)
}

// DropReason is why an accepted line was never written; it indexes
// Stats.Dropped, and its String is the reason label value.
type DropReason uint8

// Why a line was dropped.
const (
	DropQueueFull DropReason = iota // the queue's memory was spent when the line arrived
	DropShutdown                    // not written before Close's deadline (the sink kept failing)
	DropTooLarge                    // larger than the destination takes (a Kafka broker's max.message.bytes)
	DropRejected                    // refused by the destination for good (a Kafka topic missing, not authorized)
)

// DropReasons is the number of DropReason values.
const DropReasons = int(DropRejected) + 1

// String returns the reason label value: queue_full, shutdown, too_large,
// rejected.
func (r DropReason) String() string {
	switch r {
	case DropQueueFull:
		return "queue_full"
	case DropShutdown:
		return "shutdown"
	case DropTooLarge:
		return "too_large"
	case DropRejected:
		return "rejected"
	}
	return "DropReason(" + strconv.Itoa(int(r)) + ")"
}

// Defaults of Config.
const (
	DefaultQueueBytes    = 64 << 20
	DefaultBufSize       = 256 << 10
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultMetrics       = "shardd_sink"
)

// Config is the queue's part of a sink's configuration; zero fields take
// the defaults.
type Config struct {
	// QueueBytes bounds the memory of lines accepted and not yet written
	// (default 64 MiB). Past it, producers drop and count (queue_full).
	QueueBytes int
	// BufSize is the size of one batch buffer (default 256 KiB): a
	// producer fills one, the sink's writer takes it whole.
	BufSize int
	// FlushInterval is how long a partly filled batch may wait (default
	// 100ms): the writer calls Queue.Flush that often.
	FlushInterval time.Duration
	// Metrics is the prefix of the sink's metric names (default
	// shardd_sink): <Metrics>_written_total and so on.
	Metrics string
}

// withDefaults returns c with its zero fields set.
func (c Config) withDefaults() Config {
	if c.QueueBytes <= 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.BufSize <= 0 {
		c.BufSize = DefaultBufSize
	}
	if c.BufSize > c.QueueBytes {
		c.BufSize = c.QueueBytes
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Metrics == "" {
		c.Metrics = DefaultMetrics
	}
	return c
}
