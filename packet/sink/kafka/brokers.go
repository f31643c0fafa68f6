package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/shardd/shardd/packet/sink"
)

// defaultMaxMessageBytes is Kafka's default max.message.bytes, taken until
// the topic's own is known.
const defaultMaxMessageBytes = 1000012

// errNoBroker is probe's error when no broker answered.
var errNoBroker = errors.New("no broker answered")

// probe asks the brokers, within timeout, whether the topic exists and
// what its max.message.bytes is (which then bounds the client's batches).
func (s *Sink) probe(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(s.cfg.Topic)
	req.Topics = append(req.Topics, mt)
	resp, err := req.RequestWith(ctx, s.cl)
	if refused := s.hooks.refused.Load(); err != nil && refused != nil { // a broker answered, and refused
		return fmt.Errorf("the Kafka brokers %s refused the client: %w; check the SASL mechanism, user and password", strings.Join(s.cfg.Brokers, ","), *refused)
	}
	if err != nil {
		return fmt.Errorf("%w (%s): %w", errNoBroker, strings.Join(s.cfg.Brokers, ","), err)
	}
	for _, t := range resp.Topics {
		switch err := kerr.ErrorForCode(t.ErrorCode); {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			return fmt.Errorf("the Kafka topic %q does not exist on the brokers %s: create it (kafka-topics.sh --create --topic %s) or name another in --sink", s.cfg.Topic, strings.Join(s.cfg.Brokers, ","), s.cfg.Topic)
		case err != nil:
			return fmt.Errorf("the Kafka topic %q on the brokers %s: %w", s.cfg.Topic, strings.Join(s.cfg.Brokers, ","), err)
		}
	}
	// Until the topic's limit is known, no record goes to the client: a
	// batch over it would be refused whole (see run).
	n, ok, err := s.topicMaxBytes(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("%w (%s) with the topic's max.message.bytes: %w", errNoBroker, strings.Join(s.cfg.Brokers, ","), err)
	case ok:
		s.maxBytes.Store(n)
	default:
		s.log.Warn("the Kafka brokers did not tell the topic's max.message.bytes (describe configs not allowed?): record batches are cut at Kafka's default; a batch over a lower limit is refused whole, its records counted too_large",
			zap.String("topic", s.cfg.Topic), zap.Int32("assumed_max_message_bytes", s.maxBytes.Load()))
	}
	return nil
}

// topicMaxBytes reads the topic's max.message.bytes: false if the brokers
// answered without it (describing configs denied), an error if none
// answered.
func (s *Sink) topicMaxBytes(ctx context.Context) (int32, bool, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType = kmsg.ConfigResourceTypeTopic
	r.ResourceName = s.cfg.Topic
	r.ConfigNames = []string{"max.message.bytes"}
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		return 0, false, err
	}
	for _, res := range resp.Resources {
		for _, c := range res.Configs {
			if c.Name != "max.message.bytes" || c.Value == nil {
				continue
			}
			if n, err := strconv.ParseInt(*c.Value, 10, 32); err == nil && n >= 512 {
				return int32(n), true, nil
			}
		}
	}
	return 0, false, nil
}

// probeUntilFound looks at the brokers every second until one answers
// (or the sink closes), logs what it found, and lets the writer produce.
func (s *Sink) probeUntilFound() {
	defer close(s.found)
	for s.ctx.Err() == nil {
		err := s.probe(s.cfg.StartTimeout)
		switch {
		case err == nil:
			s.log.Info("a Kafka broker answers: producing", zap.String("topic", s.cfg.Topic), zap.Int32("max_message_bytes", s.maxBytes.Load()))
			return
		case !errors.Is(err, errNoBroker):
			s.log.Error("Kafka sink: records will be dropped and counted (rejected)", zap.Error(err))
			return
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// dropReason is why a record's produce failed.
func dropReason(err error) sink.DropReason {
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return sink.DropTooLarge
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, kgo.ErrClientClosed), errors.Is(err, kgo.ErrRecordTimeout):
		return sink.DropShutdown
	}
	return sink.DropRejected
}

// logDrop logs the first drop of each reason (the metrics count them all).
func (s *Sink) logDrop(r sink.DropReason, err error) {
	if r == sink.DropShutdown || s.logged[r].Swap(true) {
		return
	}
	s.log.Warn("Kafka record dropped (logged once per reason; counted in the dropped metric)",
		zap.String("reason", r.String()), zap.String("topic", s.cfg.Topic), zap.Error(err))
}

// connHooks counts open broker connections and keeps the last refusal
// (an error answer while connecting: SASL authentication failed).
type connHooks struct {
	n       atomic.Int64
	refused atomic.Pointer[error]
}

func (h *connHooks) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	var kerrErr *kerr.Error
	switch {
	case err == nil:
		h.n.Add(1)
		h.refused.Store(nil)
	case errors.As(err, &kerrErr):
		h.refused.Store(&err)
	}
}

func (h *connHooks) OnBrokerDisconnect(kgo.BrokerMetadata, net.Conn) { h.n.Add(-1) }

var (
	_ kgo.HookBrokerConnect    = (*connHooks)(nil)
	_ kgo.HookBrokerDisconnect = (*connHooks)(nil)
)

// MetricPrefix names the Kafka sink's own metrics (the queue's are named
// after Config.Queue.Metrics): shardd_sink_inflight_records and so on.
const MetricPrefix = "shardd_sink"

// descs are the Kafka sink's own metric descriptions.
type descs struct{ inflight, latency, conns, partition *prometheus.Desc }

func newDescs() descs {
	const p = MetricPrefix
	return descs{
		inflight:  prometheus.NewDesc(p+"_inflight_records", "Records handed to the Kafka client and not yet acknowledged by the brokers (or failed); updated as each batch of records settles.", nil, nil),
		latency:   prometheus.NewDesc(p+"_produce_seconds", "Time from handing a record to the Kafka client to the brokers' acknowledgement (or its failure).", nil, nil),
		conns:     prometheus.NewDesc(p+"_broker_connections", "Open connections to Kafka brokers (0: no broker reachable).", nil, nil),
		partition: prometheus.NewDesc(p+"_partition_records_total", "Records the brokers acknowledged, by partition of the topic.", []string{"partition"}, nil),
	}
}

func (d descs) describe(ch chan<- *prometheus.Desc) {
	ch <- d.inflight
	ch <- d.latency
	ch <- d.conns
	ch <- d.partition
}
