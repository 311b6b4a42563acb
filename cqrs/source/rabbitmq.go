package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// RabbitMQConfig is a queue source.
type RabbitMQConfig struct {
	URL    string
	Queue  string
	Linger time.Duration
}

// rabbitSource consumes a durable queue with manual acks; Commit acks the
// batch (multiple=true up to its last delivery). RabbitMQ has no durable
// sequence, so events carry Seq 0: no offset check, and a redelivered
// event is applied again (harmless for upserts and deletes; use JetStream or
// Kafka where a merge must not be repeated).
type rabbitSource struct {
	cfg      RabbitMQConfig
	prefetch int
	conn     *amqp.Connection
	ch       *amqp.Channel
	in       <-chan amqp.Delivery
	closed   bool
}

// NewRabbitMQ declares the queue (durable) and starts consuming it.
func NewRabbitMQ(cfg RabbitMQConfig, prefetch int) (Source, error) {
	if cfg.URL == "" || cfg.Queue == "" {
		return nil, fmt.Errorf("%w: rabbitmq needs url and queue", ErrConfig)
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 5 * time.Millisecond
	}
	r := &rabbitSource{cfg: cfg, prefetch: max(prefetch, 1)}
	if err := r.connect(); err != nil {
		return nil, err
	}
	return r, nil
}

// connect (re)opens the connection, e.g. after a broker restart; deliveries
// that were not acked before it went away come again.
func (r *rabbitSource) connect() error {
	conn, err := amqp.Dial(r.cfg.URL)
	if err != nil {
		return fmt.Errorf("source: rabbitmq: %w", err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Qos(r.prefetch, 0, false)
	}
	if err == nil {
		_, err = ch.QueueDeclare(r.cfg.Queue, true, false, false, false, nil)
	}
	var in <-chan amqp.Delivery
	if err == nil {
		in, err = ch.Consume(r.cfg.Queue, "", false, false, false, false, nil)
	}
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("source: rabbitmq queue %s: %w", r.cfg.Queue, err)
	}
	r.conn, r.ch, r.in = conn, ch, in
	return nil
}

func (r *rabbitSource) Next(ctx context.Context, max int) (Batch, error) {
	if r.closed {
		return Batch{}, ErrClosed
	}
	if r.ch == nil {
		if err := r.connect(); err != nil {
			return Batch{}, err
		}
	}
	var b Batch
	var last amqp.Delivery
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for len(b.Msgs) < max {
		var d amqp.Delivery
		var ok bool
		if len(b.Msgs) == 0 {
			select {
			case <-ctx.Done():
				return b, ctx.Err()
			case d, ok = <-r.in:
			}
		} else {
			timer.Reset(r.cfg.Linger)
			select {
			case <-timer.C:
				return r.batch(b, last), nil
			case d, ok = <-r.in:
			}
		}
		if !ok {
			_ = r.conn.Close()
			r.conn, r.ch = nil, nil // reconnect on the next call; unacked deliveries come again
			return Batch{}, ErrConnLost
		}
		b.Msgs = append(b.Msgs, Msg{Data: d.Body})
		last = d
	}
	return r.batch(b, last), nil
}

func (r *rabbitSource) batch(b Batch, last amqp.Delivery) Batch {
	b.Commit = func(context.Context) error {
		if err := last.Ack(true); err != nil {
			return fmt.Errorf("source: rabbitmq ack: %w", err)
		}
		return nil
	}
	return b
}

// ErrConnLost is a broker connection that went away; Next reconnects.
var ErrConnLost = errors.New("source: broker connection lost")

func (r *rabbitSource) Close() error {
	r.closed = true
	if r.conn == nil {
		return nil
	}
	return r.conn.Close()
}
