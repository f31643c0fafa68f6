package main

import (
	"context"
	"errors"
	"flag"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/packet/sink"
	"github.com/shardd/shardd/packet/sink/file"
	"github.com/shardd/shardd/packet/syslog"
)

// syslogOptions are the flags of --handler syslog.
type syslogOptions struct {
	sink          string
	fsync         string
	fsyncInterval time.Duration
	queue         byteSize
	kafka         kafkaOptions
}

// kafkaOptions are the flags of --sink kafka://.
type kafkaOptions struct {
	key         string
	acks        string
	compression string
	linger      time.Duration
	clientID    string
	tls         bool
	tlsCA       string
	sasl        string
	saslUser    string
	saslPwFile  string
}

// syslogFlags adds the flags of --handler syslog.
func syslogFlags(fs *flag.FlagSet, o *options) {
	o.syslog.queue = sink.DefaultQueueBytes
	o.syslog.fsync = "interval"
	o.syslog.fsyncInterval = file.DefaultFsyncInterval
	fs.StringVar(&o.syslog.sink, "sink", "", "with --handler syslog: where records go, - for standard output, a FILE to append to, or kafka://BROKER[,BROKER...]/TOPIC")
	fs.Func("fsync", "with --handler syslog: when written records are made durable: never, interval (every --fsync-interval) or always (after every batch) (default interval)", func(s string) error {
		if _, ok := file.ParseFsync(s); !ok {
			return errors.New("want never, interval or always")
		}
		o.syslog.fsync = s
		return nil
	})
	fs.Func("fsync-interval", "with --handler syslog --fsync interval: how often to fdatasync the sink (default 1s)", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return errors.New("want a positive duration such as 1s or 200ms")
		}
		o.syslog.fsyncInterval = d
		return nil
	})
	kafkaFlags(fs, &o.syslog.kafka)
	fs.Var(&o.syslog.queue, "sink-queue", "with --handler syslog: memory for records accepted and not yet written (a size: 64M); past it messages are dropped and counted")
}

// checkSyslog checks them when --handler syslog is chosen.
func checkSyslog(o *options) error {
	if o.syslog.sink == "" {
		return usagef("--handler syslog needs --sink FILE (records are appended to it) or --sink - (standard output), e.g. --sink /var/log/shardd/syslog.ndjson")
	}
	if o.syslog.queue < 1<<20 {
		return usagef("--sink-queue %d: must be at least 1M (the writer's batches are %d KiB each)", o.syslog.queue, sink.DefaultBufSize>>10)
	}
	if isKafkaSink(o.syslog.sink) {
		return checkKafka(o)
	}
	if f := o.firstGiven(kafkaFlagNames...); f != "" {
		return usagef("--%s needs --sink kafka://BROKER/TOPIC (the sink is %s); drop it", f, o.syslog.sink)
	}
	if o.given["fsync-interval"] && o.syslog.fsync != "interval" {
		return usagef("--fsync-interval needs --fsync interval (it is %s); drop one of them", o.syslog.fsync)
	}
	return nil
}

// syslogSink is the file or the Kafka sink.
type syslogSink interface {
	sink.Sink
	prometheus.Collector
	Stats() []sink.Stats
	Close(context.Context) error
}

// syslogService is --handler syslog: one sink, a Handler per shard.
type syslogService struct {
	sink syslogSink
	srv  *syslog.Server
	log  *zap.Logger
}

func newSyslogService(o *options, log *zap.Logger) (service, error) {
	if isKafkaSink(o.syslog.sink) {
		out, err := openKafka(o, log)
		if err != nil {
			return nil, err
		}
		return &syslogService{sink: out, srv: syslog.NewServer(out), log: log}, nil
	}
	mode, _ := file.ParseFsync(o.syslog.fsync)
	out, err := file.Open(file.Config{
		Path:          o.syslog.sink,
		Fsync:         mode,
		FsyncInterval: o.syslog.fsyncInterval,
		Queue:         sink.Config{QueueBytes: int(o.syslog.queue), Metrics: syslog.MetricPrefix},
		Logger:        log.With(zap.String("handler", "syslog")),
	})
	if err != nil {
		return nil, err
	}
	log.Info("syslog sink open", zap.String("sink", o.syslog.sink), zap.String("fsync", o.syslog.fsync),
		zap.Duration("fsync_interval", o.syslog.fsyncInterval), zap.Int("queue_bytes", int(o.syslog.queue)))
	return &syslogService{sink: out, srv: syslog.NewServer(out), log: log}, nil
}

func (s *syslogService) NewHandler(shard int) packet.Handler { return s.srv.NewHandler(shard) }

func (s *syslogService) Reload() error { return errNothingToReload }

func (s *syslogService) Reopen() error {
	f, ok := s.sink.(*file.Sink)
	if !ok {
		return errNothingToReopen
	}
	err := f.Reopen()
	if errors.Is(err, file.ErrNotAFile) {
		return errNothingToReopen
	}
	return err
}

func (s *syslogService) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.srv, s.sink}
}

// Close flushes what was accepted and logs the sink's accounting:
// received = written + dropped.
func (s *syslogService) Close(ctx context.Context) error {
	err := s.sink.Close(ctx)
	var received, written, dropped, parseErrors uint64
	reasons := map[string]uint64{}
	for _, st := range s.srv.Stats() {
		received += st.Received()
		parseErrors += st.Messages[syslog.Invalid]
	}
	for _, st := range s.sink.Stats() {
		written += st.Written
		dropped += st.DroppedTotal()
		for r, n := range st.Dropped {
			reasons[sink.DropReason(r).String()] += n
		}
	}
	s.log.Info("syslog sink closed",
		zap.Uint64("received", received), zap.Uint64("written", written), zap.Uint64("dropped", dropped),
		zap.Any("dropped_by_reason", reasons), zap.Uint64("parse_errors", parseErrors))
	return err
}
