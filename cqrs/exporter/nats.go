package exporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// NATS publishes each record to subject.<view>. When a JetStream stream
// captures the subject, delivery is confirmed by its ack; otherwise by a
// flush (the server received it).
type NATS struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
}

func NewNATS(cfg rules.Exporter) (*NATS, error) {
	url := cfg.URL
	if url == "" {
		port := cfg.Port
		if port == 0 {
			port = 4222
		}
		url = "nats://" + net.JoinHostPort(cfg.Host, strconv.Itoa(port))
	}
	opts := []nats.Option{nats.Name("rosen-cqrs-exporter"), nats.MaxReconnects(-1)}
	if cfg.Username != "" {
		opts = append(opts, nats.UserInfo(cfg.Username, cfg.Password))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: nats %s: %w", ErrDelivery, url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("exporter: %w", err)
	}
	return &NATS{nc: nc, js: js, subject: cfg.Subject}, nil
}

func (n *NATS) Emit(ctx context.Context, recs []Record) error {
	for _, r := range recs {
		data, err := r.Marshal()
		if err != nil {
			return fmt.Errorf("%w: encode: %w", ErrPermanent, err)
		}
		subj := n.subject + "." + r.View
		if lim := n.nc.MaxPayload(); int64(len(data)) > lim {
			return fmt.Errorf("%w: nats %s: record of %d bytes over the server's maximum payload %d", ErrPermanent, subj, len(data), lim)
		}
		if _, err := n.js.Publish(ctx, subj, data); err != nil {
			if !errors.Is(err, jetstream.ErrNoStreamResponse) {
				return fmt.Errorf("%w: nats %s: %w", ErrDelivery, subj, err)
			}
			// No stream captures the subject: plain core NATS.
			if err := n.nc.Publish(subj, data); err != nil {
				return fmt.Errorf("%w: nats %s: %w", ErrDelivery, subj, err)
			}
		}
	}
	if _, ok := ctx.Deadline(); !ok { // FlushWithContext refuses a context without one
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	if err := n.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("%w: nats flush: %w", ErrDelivery, err)
	}
	return nil
}

func (n *NATS) Close() error { n.nc.Close(); return nil }
