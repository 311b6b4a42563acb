package source

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// jsSource reads the event store through a durable (or ordered) consumer.
type jsSource struct {
	it     jetstream.MessagesContext
	linger time.Duration
	acks   bool
	lanes  []string // by partition: "js:<stream>:<p>"
}

// Lanes are the offset lanes of the store's partitions, in partition order.
func (s *EventStore) Lanes() []string { return s.lanes() }

func (s *EventStore) lanes() []string {
	out := make([]string, s.cfg.Partitions)
	for p := range out {
		out[p] = "js:" + s.cfg.Stream + ":" + strconv.Itoa(p)
	}
	return out
}

// Consumer opens the durable consumer `name` for some partitions (nil: all).
// It restarts delivery just after the consumer's ack floor, so that after a
// crash every unacknowledged event comes again, in order, before new ones
// (a redelivery of an older event after a newer one would break per-key order).
func (s *EventStore) Consumer(ctx context.Context, name string, partitions []int, linger time.Duration) (Source, error) {
	var filters []string
	if partitions == nil {
		filters = []string{s.cfg.Subject + ".*.*"}
	}
	for _, p := range partitions {
		if p < 0 || p >= s.cfg.Partitions {
			return nil, fmt.Errorf("%w: partition %d of %d", ErrConfig, p, s.cfg.Partitions)
		}
		filters = append(filters, s.cfg.Subject+"."+strconv.Itoa(p)+".*")
	}
	cc := jetstream.ConsumerConfig{
		Durable: name, AckPolicy: jetstream.AckAllPolicy, AckWait: time.Hour, MaxAckPending: 100_000,
		DeliverPolicy: jetstream.DeliverAllPolicy, MaxDeliver: -1,
	}
	if len(filters) == 1 {
		cc.FilterSubject = filters[0] // servers before 2.10 know only the single filter
	} else {
		cc.FilterSubjects = filters
	}
	if old, err := s.stream.Consumer(ctx, name); err == nil {
		info, err := old.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("source: consumer %s: %w", name, err)
		}
		if info.AckFloor.Stream > 0 {
			cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1
		}
		if err := s.stream.DeleteConsumer(ctx, name); err != nil {
			return nil, fmt.Errorf("source: reset consumer %s: %w", name, err)
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("source: consumer %s: %w", name, err)
	}
	cons, err := s.stream.CreateConsumer(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("source: create consumer %s: %w", name, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(8192))
	if err != nil {
		return nil, fmt.Errorf("source: consume %s: %w", name, err)
	}
	return &jsSource{it: it, linger: linger, acks: true, lanes: s.lanes()}, nil
}

// Replay reads the event store from a sequence (or a time, when from is zero
// and since is set) without acknowledgements: for rebuilding a view.
func (s *EventStore) Replay(ctx context.Context, from uint64, since time.Time) (Source, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{s.cfg.Subject + ".*.*"}, DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case from > 1:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	case !since.IsZero():
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := s.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("source: replay consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(8192))
	if err != nil {
		return nil, fmt.Errorf("source: replay: %w", err)
	}
	return &jsSource{it: it, linger: 5 * time.Millisecond, lanes: s.lanes()}, nil
}

// Next returns what is buffered or arrives within the linger of the
// batch's first message, up to max: under a backlog batches fill at once
// (large batches amortise each write), under a trickle they close after the
// linger (a bounded lag).
func (j *jsSource) Next(ctx context.Context, limit int) (Batch, error) {
	var b Batch
	var last jetstream.Msg
	var deadline time.Time
	for len(b.Msgs) < limit {
		var m jetstream.Msg
		var err error
		if len(b.Msgs) == 0 {
			m, err = j.it.Next(jetstream.NextContext(ctx))
			deadline = time.Now().Add(j.linger)
		} else {
			// Past the deadline only what is already buffered is taken.
			m, err = j.it.Next(jetstream.NextMaxWait(max(time.Until(deadline), 100*time.Microsecond)))
		}
		if err != nil {
			if len(b.Msgs) > 0 {
				break
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return b, ErrClosed
			}
			return b, fmt.Errorf("source: next: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return b, fmt.Errorf("source: metadata: %w", err)
		}
		p := subjectPartition(m.Subject())
		msg := Msg{Data: m.Data(), Seq: meta.Sequence.Stream, Partition: p}
		if p >= 0 && p < len(j.lanes) {
			msg.Lane = j.lanes[p]
		}
		b.Msgs = append(b.Msgs, msg)
		last = m
	}
	b.Commit = func(ctx context.Context) error {
		if !j.acks || last == nil {
			return nil
		}
		return last.DoubleAck(ctx) // AckAll: this acknowledges the whole batch
	}
	return b, nil
}

func (j *jsSource) Close() error { j.it.Stop(); return nil }

// subjectPartition reads <prefix>.<partition>.<type>.
func subjectPartition(subject string) int {
	parts := strings.Split(subject, ".")
	if len(parts) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(parts[len(parts)-2])
	return p
}

// AckFloor is the lowest acknowledged stream sequence over the partitions'
// durable consumers (rosen-cqrs-p<N>); a missing consumer counts as 0.
func (s *EventStore) AckFloor(ctx context.Context, partitions int) (uint64, error) {
	var floor uint64
	for p := range partitions {
		c, err := s.stream.Consumer(ctx, "rosen-cqrs-p"+strconv.Itoa(p))
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("source: consumer of partition %d: %w", p, err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("source: consumer of partition %d: %w", p, err)
		}
		if p == 0 || info.AckFloor.Stream < floor {
			floor = info.AckFloor.Stream
		}
	}
	return floor, nil
}
