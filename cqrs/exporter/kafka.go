package exporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// Kafka produces each record to the topic keyed by the row key (so a key's
// records stay in order in one partition); ProduceSync waits for the
// brokers' acks (acks=all, idempotent producer).
type Kafka struct {
	cl    *kgo.Client
	topic string
}

func NewKafka(cfg rules.Exporter) (*Kafka, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.AllowAutoTopicCreation(),
	}
	if cfg.Username != "" {
		opts = append(opts, kgo.SASL(plain.Auth{User: cfg.Username, Pass: cfg.Password}.AsMechanism()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: kafka: %w", ErrConfig, err)
	}
	return &Kafka{cl: cl, topic: cfg.Topic}, nil
}

func (k *Kafka) Emit(ctx context.Context, recs []Record) error {
	batch := make([]*kgo.Record, 0, len(recs))
	for _, r := range recs {
		data, err := r.Marshal()
		if err != nil {
			return fmt.Errorf("%w: encode: %w", ErrPermanent, err)
		}
		batch = append(batch, &kgo.Record{Topic: k.topic, Key: []byte(r.Key), Value: data})
	}
	if err := k.cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
		if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) || errors.Is(err, kerr.InvalidRecord) {
			return fmt.Errorf("%w: kafka %s: %w", ErrPermanent, k.topic, err)
		}
		return fmt.Errorf("%w: kafka %s: %w", ErrDelivery, k.topic, err)
	}
	return nil
}

func (k *Kafka) Close() error { k.cl.Close(); return nil }
