package sink

import (
	"bytes"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// Batch is one buffer of whole lines from one producer, for the writer.
type Batch struct {
	Lines []byte // complete lines, each ending in '\n'
	N     int    // how many
	p     *producer
	big   bool // sized for one long line; not recycled
}

// Queue holds the lines producers accepted until the sink's writer has
// written them: batches of whole lines, each producer's in order, in at
// most Config.QueueBytes of buffers. A producer fills one batch at a time
// and queues it when it is nearly full; the writer takes full batches from
// Full, calls Flush every Config.FlushInterval so that no line waits longer
// in a partly filled one, and gives each batch back with Release.
type Queue struct {
	cfg  Config
	desc descs

	mu        sync.Mutex // guards free, budget, producers
	free      []*Batch   // recycled buffers, most recently used last
	budget    int        // bytes of buffers that may still be allocated
	producers []*producer
	wcache    []*producer // the writer's copy of producers

	full chan *Batch
}

// NewQueue returns an empty queue; zero fields of cfg take the defaults.
func NewQueue(cfg Config) *Queue {
	cfg = cfg.withDefaults()
	return &Queue{
		cfg:    cfg,
		desc:   newDescs(cfg.Metrics),
		budget: cfg.QueueBytes,
		full:   make(chan *Batch, cfg.QueueBytes/cfg.BufSize+1),
	}
}

// Config returns the queue's configuration, defaults filled in.
func (q *Queue) Config() Config { return q.cfg }

// NewProducer implements Sink.
func (q *Queue) NewProducer(shard int) Producer {
	p := &producer{q: q, shard: shard}
	q.mu.Lock()
	q.producers = append(q.producers, p)
	q.mu.Unlock()
	return p
}

// Full is the batches ready for the writer, each producer's in order.
func (q *Queue) Full() <-chan *Batch { return q.full }

// Flush queues every producer's partly filled batch, so lines wait at most
// FlushInterval. They go behind the producer's full batches: each
// producer's lines stay in order. The batch is queued under the producer's
// lock, as the producer queues its own: queued after the unlock, a batch
// the producer filled and queued meanwhile (its next lines) could go
// first. Only the writer calls Flush.
func (q *Queue) Flush() {
	for _, p := range q.writerProducers() {
		p.mu.Lock()
		if b := p.cur; b != nil && b.N > 0 {
			p.cur = nil
			q.submit(b) // never blocks (see submit)
		}
		p.mu.Unlock()
	}
}

// Drain is the writer's last pass at Close: it flushes the partly filled
// batches and hands every queued batch to write, in order.
func (q *Queue) Drain(write func(*Batch)) {
	q.Flush()
	for {
		select {
		case b := <-q.full:
			write(b)
		default:
			return
		}
	}
}

// Release ends the writer's work on b: its first written lines count as
// written, the rest as dropped (DropShutdown), and its memory goes back to
// the queue.
func (q *Queue) Release(b *Batch, written int) {
	var dropped [DropReasons]int
	dropped[DropShutdown] = b.N - written
	q.Settle(b, written, &dropped)
}

// Settle is Release for a sink whose lines fail one by one (a record
// refused among others): of b's lines, written were written and
// dropped[r] dropped for reason r; the rest (if any) count as dropped
// (DropShutdown). b's memory goes back to the queue.
func (q *Queue) Settle(b *Batch, written int, dropped *[DropReasons]int) {
	b.p.written.Add(uint64(max(written, 0)))
	rest := b.N - written
	for r, n := range dropped {
		if n > 0 {
			b.p.dropped[r].Add(uint64(n))
			rest -= n
		}
	}
	if rest > 0 {
		b.p.dropped[DropShutdown].Add(uint64(rest))
	}
	q.recycle(b)
}

// take returns an empty batch with room for n bytes, or nil if the queue's
// memory is spent.
func (q *Queue) take(p *producer, n int) *Batch {
	q.mu.Lock()
	defer q.mu.Unlock()
	bufSize := q.cfg.BufSize
	if n <= bufSize {
		if k := len(q.free); k > 0 {
			b := q.free[k-1]
			q.free[k-1] = nil
			q.free = q.free[:k-1]
			b.p = p
			return b
		}
		if q.budget < bufSize {
			return nil
		}
		q.budget -= bufSize
		return &Batch{Lines: make([]byte, 0, bufSize), p: p}
	}
	// A line longer than a buffer gets a buffer of its own, paid for by
	// recycled buffers if need be.
	for q.budget < n && len(q.free) > 0 {
		q.free[len(q.free)-1] = nil
		q.free = q.free[:len(q.free)-1]
		q.budget += bufSize
	}
	if q.budget < n {
		return nil
	}
	q.budget -= n
	return &Batch{Lines: make([]byte, 0, n), p: p, big: true}
}

// recycle returns a written (or dropped) batch's memory.
func (q *Queue) recycle(b *Batch) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if b.big {
		q.budget += cap(b.Lines)
		return
	}
	b.Lines, b.N, b.p = b.Lines[:0], 0, nil
	q.free = append(q.free, b)
}

// submit queues a batch for the writer. The channel holds as many batches
// as the budget allows buffers, so it never blocks.
func (q *Queue) submit(b *Batch) {
	q.full <- b
}

// allocated is the memory of the batch buffers: what the budget has given.
func (q *Queue) allocated() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cfg.QueueBytes - q.budget
}

func (q *Queue) snapshotProducers() []*producer {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]*producer(nil), q.producers...)
}

// writerProducers is snapshotProducers for the writer goroutine, without
// an allocation per call once the producers are all there.
func (q *Queue) writerProducers() []*producer {
	q.mu.Lock()
	if len(q.wcache) != len(q.producers) {
		q.wcache = append(q.wcache[:0], q.producers...)
	}
	q.mu.Unlock()
	return q.wcache
}

// producer is one handler's side of a Queue.
type producer struct {
	q     *Queue
	shard int

	mu  sync.Mutex // guards cur against the writer's Flush
	cur *Batch

	_        cpu.CacheLinePad
	accepted atomic.Uint64 // lines given to Write
	written  atomic.Uint64 // by the writer (Release)
	dropped  [DropReasons]atomic.Uint64
	_        cpu.CacheLinePad
}

// Write implements Producer: it copies lines into the producer's batch,
// queueing the batch when it is nearly full or when the next line does not
// fit; a line longer than a buffer gets a batch of its own. When the queue
// has no memory for a batch, the lines left are dropped.
func (p *producer) Write(lines []byte, n int) {
	if len(lines) == 0 {
		return
	}
	p.accepted.Add(uint64(n))
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(lines) > 0 {
		if p.cur == nil {
			if p.cur = p.q.take(p, firstLine(lines)); p.cur == nil {
				p.dropped[DropQueueFull].Add(uint64(max(n, 0)))
				return
			}
		}
		b := p.cur
		k, m := fit(b, lines, n)
		if k == 0 && b.N == 0 { // not a line (no '\n'): cannot happen with whole lines
			p.dropped[DropQueueFull].Add(uint64(max(n, 0)))
			return
		}
		b.Lines = append(b.Lines, lines[:k]...)
		b.N += m
		lines, n = lines[k:], n-m
		if len(lines) > 0 || cap(b.Lines)-len(b.Lines) < 1024 || b.big {
			p.cur = nil
			p.q.submit(b)
		}
	}
}

// firstLine is the length of the first line of lines, '\n' included.
func firstLine(lines []byte) int {
	if k := bytes.IndexByte(lines, '\n'); k >= 0 {
		return k + 1
	}
	return len(lines)
}

// fit returns how many bytes (k) and lines (m) at the start of lines, which
// holds n lines, fit in b: all of them, or the whole lines that do.
func fit(b *Batch, lines []byte, n int) (k, m int) {
	room := cap(b.Lines) - len(b.Lines)
	if len(lines) <= room {
		return len(lines), n
	}
	k = bytes.LastIndexByte(lines[:room], '\n') + 1
	return k, bytes.Count(lines[:k], []byte{'\n'})
}

// Stats are a queue's counters summed over the producers of one shard.
type Stats struct {
	Shard    int
	Accepted uint64 // lines given to Write
	Written  uint64
	Dropped  [DropReasons]uint64 // by DropReason
}

// DroppedTotal is every accepted line that was not written.
func (st *Stats) DroppedTotal() uint64 {
	var n uint64
	for _, d := range st.Dropped {
		n += d
	}
	return n
}

// Queued is every accepted line not yet written or dropped.
func (st *Stats) Queued() uint64 {
	return st.Accepted - st.Written - st.DroppedTotal()
}

// Dropped is the lines dropped for reason r, over every producer.
func (q *Queue) Dropped(r DropReason) uint64 {
	var n uint64
	for _, p := range q.snapshotProducers() {
		n += p.dropped[r].Load()
	}
	return n
}

// Stats returns the counters per shard (producers of one shard index are
// summed), in shard order. Written and dropped are read before accepted,
// so accepted >= written + dropped.
func (q *Queue) Stats() []Stats {
	var out []Stats
	at := map[int]int{}
	for _, p := range q.snapshotProducers() {
		i, ok := at[p.shard]
		if !ok {
			i = len(out)
			at[p.shard] = i
			out = append(out, Stats{Shard: p.shard})
		}
		st := &out[i]
		st.Written += p.written.Load()
		for r := range p.dropped {
			st.Dropped[r] += p.dropped[r].Load()
		}
		st.Accepted += p.accepted.Load()
	}
	slices.SortStableFunc(out, func(a, b Stats) int { return a.Shard - b.Shard })
	return out
}

var _ Sink = (*Queue)(nil)
