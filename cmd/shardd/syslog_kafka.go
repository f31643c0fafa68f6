package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/shardd/shardd/packet/sink"
	"github.com/shardd/shardd/packet/sink/kafka"
	"github.com/shardd/shardd/packet/syslog"
)

// kafkaFlagNames are the flags that only apply to --sink kafka://.
var kafkaFlagNames = []string{"kafka-key", "kafka-acks", "kafka-compression", "kafka-linger", "kafka-client-id",
	"kafka-tls", "kafka-tls-ca", "kafka-sasl", "kafka-sasl-user", "kafka-sasl-password-file"}

// kafkaFlags adds the flags of --sink kafka://.
func kafkaFlags(fs *flag.FlagSet, k *kafkaOptions) {
	k.key, k.acks, k.compression = "source", "all", kafka.DefaultCompression
	k.linger, k.clientID = kafka.DefaultLinger, kafka.DefaultClientID
	fs.Func("kafka-key", "with --sink kafka://: the record key, source (the sender's IP address: one host's messages stay in order on one partition) or none (spread over the partitions) (default source)", func(s string) error {
		if s != "source" && s != "none" {
			return errors.New("want source or none")
		}
		k.key = s
		return nil
	})
	fs.Func("kafka-acks", "with --sink kafka://: when a record counts as written: all (every in-sync replica has it; idempotent producer), leader, or none (once sent) (default all)", func(s string) error {
		if _, ok := kafka.ParseAcks(s); !ok {
			return errors.New("want all, leader or none")
		}
		k.acks = s
		return nil
	})
	fs.Func("kafka-compression", "with --sink kafka://: record batch compression, "+strings.Join(kafka.Compressions, ", ")+" (default "+kafka.DefaultCompression+")", func(s string) error {
		if _, ok := kafka.ParseCompression(s); !ok {
			return errors.New("want one of " + strings.Join(kafka.Compressions, ", "))
		}
		k.compression = s
		return nil
	})
	fs.Func("kafka-linger", "with --sink kafka://: how long a partly filled record batch may wait for more (default 10ms)", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return errors.New("want a duration such as 10ms or 0")
		}
		k.linger = d
		return nil
	})
	fs.StringVar(&k.clientID, "kafka-client-id", k.clientID, "with --sink kafka://: the client id the brokers see")
	fs.BoolVar(&k.tls, "kafka-tls", false, "with --sink kafka://: reach the brokers over TLS, trusting the system's CA certificates")
	fs.StringVar(&k.tlsCA, "kafka-tls-ca", "", "with --sink kafka://: reach the brokers over TLS, trusting only the PEM CA certificate(s) in this FILE")
	fs.Func("kafka-sasl", "with --sink kafka://: authenticate to the brokers with SASL: "+strings.Join(kafka.SASLMechanisms, ", ")+" (with --kafka-sasl-user and --kafka-sasl-password-file)", func(s string) error {
		if _, ok := kafka.SASL(s, "", ""); !ok {
			return errors.New("want one of " + strings.Join(kafka.SASLMechanisms, ", "))
		}
		k.sasl = s
		return nil
	})
	fs.StringVar(&k.saslUser, "kafka-sasl-user", "", "with --kafka-sasl: the user name")
	fs.StringVar(&k.saslPwFile, "kafka-sasl-password-file", "", "with --kafka-sasl: a FILE whose first line is the password (mode 0600 or 0640, owned by shardd's user or root)")
}

// isKafkaSink is whether --sink names Kafka brokers.
func isKafkaSink(s string) bool { return strings.HasPrefix(s, kafka.Scheme) }

// checkKafkaSink is shardd check's look at a Kafka sink: the sink is
// opened (a broker that answers must have the topic) and closed.
func checkKafkaSink(o *options) error {
	out, err := openKafka(o, zap.NewNop())
	if err != nil {
		return err
	}
	return out.Close(context.Background())
}

// checkKafka checks --sink kafka://... and the flags that go with it.
func checkKafka(o *options) error {
	if _, _, err := kafka.ParseURL(o.syslog.sink); err != nil {
		return usagef("--sink %s: %v", o.syslog.sink, err)
	}
	if f := o.firstGiven("fsync", "fsync-interval"); f != "" {
		return usagef("--%s applies to a file sink, not to --sink %s; drop it", f, o.syslog.sink)
	}
	if k := o.syslog.kafka; (k.sasl != "") != (k.saslUser != "") || (k.sasl != "") != (k.saslPwFile != "") {
		return usagef("--kafka-sasl, --kafka-sasl-user and --kafka-sasl-password-file go together: give all three or none")
	}
	if o.syslog.kafka.clientID == "" || strings.ContainsFunc(o.syslog.kafka.clientID, func(r rune) bool { return r < ' ' || r > '~' }) {
		return usagef("--kafka-client-id %q: want printable ASCII, e.g. shardd-%s", o.syslog.kafka.clientID, "host1")
	}
	return nil
}

// openKafka opens the Kafka sink of --sink kafka://.
func openKafka(o *options, log *zap.Logger) (*kafka.Sink, error) {
	k := o.syslog.kafka
	brokers, topic, _ := kafka.ParseURL(o.syslog.sink) // checked by checkKafka
	acks, _ := kafka.ParseAcks(k.acks)
	cfg := kafka.Config{
		Brokers: brokers, Topic: topic, Acks: acks, Compression: k.compression, Linger: k.linger, ClientID: k.clientID,
		Queue:  sink.Config{QueueBytes: int(o.syslog.queue), Metrics: syslog.MetricPrefix},
		Logger: log.With(zap.String("handler", "syslog")),
	}
	if k.key == "source" {
		cfg.Key = syslog.SourceKey
	}
	if err := kafkaAuth(&k, &cfg); err != nil {
		return nil, err
	}
	out, err := kafka.Open(cfg)
	if err != nil {
		return nil, err
	}
	log.Info("syslog sink open", zap.Strings("brokers", brokers), zap.String("topic", topic),
		zap.String("key", k.key), zap.String("acks", k.acks), zap.String("compression", k.compression),
		zap.Duration("linger", k.linger), zap.Int("queue_bytes", int(o.syslog.queue)))
	return out, nil
}

// kafkaAuth sets the TLS and SASL of cfg from the flags.
func kafkaAuth(k *kafkaOptions, cfg *kafka.Config) error {
	if k.tls || k.tlsCA != "" {
		t, err := kafka.TLSConfig(k.tlsCA)
		if err != nil {
			return fmt.Errorf("--kafka-tls-ca %w", err)
		}
		cfg.TLS = t
	}
	if k.sasl != "" {
		pw, err := kafka.ReadSecret(k.saslPwFile)
		if err != nil {
			return fmt.Errorf("--kafka-sasl-password-file %w", err)
		}
		cfg.SASL, _ = kafka.SASL(k.sasl, k.saslUser, pw)
	}
	return nil
}
