// Package kafka is the sink that produces lines to a Kafka topic with
// franz-go (github.com/twmb/franz-go): one record per line, the line
// without its newline as the value, a key chosen per line (Config.Key). A
// line counts as written only once the brokers acknowledged its record
// (per Config.Acks); until then it holds its place in the sink.Queue, so
// accepted = written + dropped + in flight at every scrape, and memory
// stays bounded by the queue. The producer is idempotent (with acks all):
// the client's retries do not duplicate records.
//
// Brokers unreachable at start are not an error: the sink starts, logs
// once, buffers into its queue (dropping and counting once it is full) and
// produces when a broker answers (no record goes to the client before
// then: the topic's max.message.bytes must be known first). A missing topic
// is an error at Open if a broker answers; a topic deleted later fails
// each record after about 4s (unknownTopicRetries metadata answers without
// it), counted rejected. A record over the topic's max.message.bytes is
// dropped and counted (too_large) without holding back the others.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"go.uber.org/zap"

	"github.com/shardd/shardd/packet/sink"
)

// Acks is how many brokers must have a record before it counts as written.
type Acks uint8

// Acks settings.
const (
	AcksAll    Acks = iota // every in-sync replica (idempotent producer)
	AcksLeader             // the partition's leader only
	AcksNone               // none: a record counts as written once sent
)

var acksNames = [...]string{"all", "leader", "none"}

// String returns all, leader or none.
func (a Acks) String() string {
	if int(a) < len(acksNames) {
		return acksNames[a]
	}
	return fmt.Sprintf("Acks(%d)", uint8(a))
}

// ParseAcks reads all, leader or none.
func ParseAcks(s string) (Acks, bool) {
	for i, n := range acksNames {
		if n == s {
			return Acks(i), true
		}
	}
	return 0, false
}

// Compressions are the names ParseCompression takes.
var Compressions = []string{"zstd", "lz4", "snappy", "gzip", "none"}

// DefaultCompression is the default of Config.Compression (see
// BenchmarkCompression: on syslog records lz4 costs a fraction of zstd's
// CPU for a somewhat larger output).
const DefaultCompression = "lz4"

// ParseCompression returns the codec named, or false.
func ParseCompression(s string) (kgo.CompressionCodec, bool) {
	switch s {
	case "zstd":
		return kgo.ZstdCompression(), true
	case "lz4":
		return kgo.Lz4Compression(), true
	case "snappy":
		return kgo.SnappyCompression(), true
	case "gzip":
		return kgo.GzipCompression(), true
	case "none":
		return kgo.NoCompression(), true
	}
	return kgo.NoCompression(), false
}

// How long records wait for a topic deleted after start: about
// unknownTopicRetries × metadataMinAge (TestTopicDeletedAfterStart).
const (
	unknownTopicRetries = 4
	metadataMinAge      = time.Second
)

// Defaults of Config.
const (
	DefaultLinger       = 10 * time.Millisecond
	DefaultClientID     = "shardd"
	DefaultStartTimeout = 5 * time.Second
)

// Config is the sink's configuration; zero fields take the defaults.
type Config struct {
	Brokers []string // host:port each (ParseURL)
	Topic   string
	// Key returns the record key of a line (a slice of it, or nil for
	// none: the client spreads such records over the partitions). Lines
	// with one key go to one partition, in order. Nil: no keys.
	Key         func(line []byte) []byte
	Acks        Acks
	Compression string        // one of Compressions (default DefaultCompression)
	Linger      time.Duration // how long a partial record batch may wait (default 10ms)
	ClientID    string        // default "shardd"
	// TLS, if not nil, is used to reach the brokers (TLSConfig).
	TLS *tls.Config
	// SASL, if not nil, authenticates to the brokers (SASL).
	SASL sasl.Mechanism
	// StartTimeout bounds Open's look at the brokers (default 5s): if
	// none answers by then, the sink starts anyway and logs it.
	StartTimeout time.Duration
	// Queue sizes the memory of lines accepted and not yet acknowledged,
	// and names the metrics.
	Queue  sink.Config
	Logger *zap.Logger

	opts []kgo.Opt // tests add client options
}

// Sink produces the lines of every producer to one topic. It implements
// sink.Sink.
type Sink struct {
	cfg Config
	log *zap.Logger
	q   *sink.Queue
	cl  *kgo.Client

	ctx    context.Context // of every Produce; canceled at Close's deadline
	cancel context.CancelFunc

	stop  *sink.Stop
	found chan struct{} // closed once a broker answered Open's probe or a later one

	batches  sync.WaitGroup // batches handed to the client and not yet settled
	maxBytes atomic.Int32   // the topic's max.message.bytes, as far as known
	inflight atomic.Int64   // records handed to the client and not yet answered (published per batch)
	hooks    connHooks      // open broker connections, refusals
	produced sink.Latency
	parts    partitionCounts // records acknowledged per partition
	acc      promiseAcc      // the promises' counts not yet published
	trackers sync.Pool       // of *tracker
	logged   [sink.DropReasons]atomic.Bool
	descs    descs
}

// Open starts the client and the writer. If a broker answers within
// Config.StartTimeout and the topic does not exist, it fails; if none
// answers, the sink starts anyway (logged) and looks again in the
// background.
func Open(cfg Config) (*Sink, error) {
	cfg = cfg.withDefaults()
	q := sink.NewQueue(cfg.Queue)
	cfg.Queue = q.Config()
	s := &Sink{cfg: cfg, log: cfg.Logger, q: q, stop: sink.NewStop(), found: make(chan struct{})}
	s.maxBytes.Store(defaultMaxMessageBytes)
	s.descs = newDescs()
	cl, err := kgo.NewClient(s.clientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka sink: %w", err)
	}
	s.cl = cl
	s.ctx, s.cancel = context.WithCancel(context.Background())
	switch err := s.probe(cfg.StartTimeout); {
	case errors.Is(err, errNoBroker):
		s.log.Warn("no Kafka broker answers yet: starting anyway, records wait in the sink queue (dropped and counted once it is full)",
			zap.Strings("brokers", cfg.Brokers), zap.String("topic", cfg.Topic), zap.Error(err))
		go s.probeUntilFound()
	case err != nil:
		cl.Close()
		s.cancel()
		return nil, err
	default:
		close(s.found)
	}
	go s.run()
	return s, nil
}

func (cfg Config) withDefaults() Config {
	if cfg.Compression == "" {
		cfg.Compression = DefaultCompression
	}
	if cfg.Linger <= 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return cfg
}

// clientOpts are the franz-go client's options for cfg.
func (s *Sink) clientOpts() []kgo.Opt {
	cfg := s.cfg
	codec, _ := ParseCompression(cfg.Compression)
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ClientID(cfg.ClientID),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(cfg.Linger),
		// Records alias the queue's batches, which hold the memory; this
		// only bounds the client's bookkeeping.
		kgo.MaxBufferedRecords(max(cfg.Queue.QueueBytes/64, 50000)),
		// The client cuts batches at the topic's limit, so one record
		// over it fails alone (too_large) instead of its batch.
		kgo.ProducerBatchMaxBytesFn(func(string) int32 { return s.maxBytes.Load() }),
		kgo.WithHooks(&s.hooks),
		// A topic deleted under the sink: each record fails (rejected)
		// after this many metadata answers without it, about a second
		// apart, instead of waiting in the queue for its return.
		kgo.UnknownTopicRetries(unknownTopicRetries),
		kgo.MetadataMinAge(metadataMinAge),
	}
	if cfg.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(cfg.TLS))
	}
	if cfg.SASL != nil {
		opts = append(opts, kgo.SASL(cfg.SASL))
	}
	switch cfg.Acks {
	case AcksAll:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case AcksLeader:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case AcksNone:
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	}
	return append(opts, cfg.opts...)
}

// NewProducer implements sink.Sink.
func (s *Sink) NewProducer(shard int) sink.Producer { return s.q.NewProducer(shard) }

// Stats returns the queue's counters per shard (see sink.Queue.Stats).
func (s *Sink) Stats() []sink.Stats { return s.q.Stats() }

// run is the writer goroutine: it hands full batches to the client as
// they come and takes partly filled ones every flush interval. Until a
// broker has answered, batches wait in the queue: handed to the client
// before the topic's max.message.bytes is known, a batch with one record
// over it would be refused whole, and with it (the idempotent producer's
// sequence broken) every record buffered for its partition.
func (s *Sink) run() {
	defer close(s.stop.Done)
	tick := time.NewTicker(s.cfg.Queue.FlushInterval)
	defer tick.Stop()
	var full <-chan *sink.Batch // nil until found
	found := s.found
	for {
		select {
		case <-found:
			full, found = s.q.Full(), nil
		case b := <-full:
			s.produce(b)
		case <-tick.C:
			s.q.Flush()
		case <-s.stop.Requested:
			s.drain()
			return
		}
	}
}

// Close hands every accepted line to the client and waits for the
// brokers' acknowledgements. Call it after every producer has stopped. If
// ctx ends first, what is unacknowledged is dropped, counted (reason
// shutdown) and reported in the error.
func (s *Sink) Close(ctx context.Context) error { return s.stop.Close(ctx) }

// drain produces what is queued, waits for the acknowledgements until the
// close deadline, then closes the client, which fails what is left.
func (s *Sink) drain() {
	stop := context.AfterFunc(s.stop.Ctx, s.cancel) // unblocks a Produce waiting for room
	defer stop()
	s.q.Drain(s.produce)
	if err := s.cl.Flush(s.stop.Ctx); err != nil {
		s.log.Warn("Kafka brokers did not acknowledge every record by the drain deadline", zap.Int64("in_flight", s.inflight.Load()), zap.Error(err))
	}
	s.cancel()
	s.cl.Close() // fails every record still buffered: each promise runs
	s.batches.Wait()
	if n := s.q.Dropped(sink.DropShutdown); n > 0 {
		s.stop.Err = fmt.Errorf("the Kafka brokers did not acknowledge %d accepted messages by the drain deadline (counted in %s_dropped_total{reason=\"shutdown\"}); check the brokers and raise --drain-timeout", n, s.cfg.Queue.Metrics)
	}
}

// Describe implements prometheus.Collector.
func (s *Sink) Describe(ch chan<- *prometheus.Desc) {
	s.q.Describe(ch)
	s.descs.describe(ch)
}

// Collect implements prometheus.Collector: the queue's metrics, records in
// flight, produce latency, open broker connections and records per
// partition.
func (s *Sink) Collect(ch chan<- prometheus.Metric) {
	s.q.Collect(ch)
	ch <- prometheus.MustNewConstMetric(s.descs.inflight, prometheus.GaugeValue, float64(s.inflight.Load()))
	ch <- s.produced.Metric(s.descs.latency)
	ch <- prometheus.MustNewConstMetric(s.descs.conns, prometheus.GaugeValue, float64(s.hooks.n.Load()))
	s.parts.collect(ch, s.descs.partition)
}

var (
	_ sink.Sink            = (*Sink)(nil)
	_ prometheus.Collector = (*Sink)(nil)
)
