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

// ConsumerName is the durable consumer of a set of partitions:
// rosen-cqrs-p<N> for one, rosen-cqrs-all for every partition of the store,
// rosen-cqrs-p<N>_<M>… otherwise.
func (s *EventStore) ConsumerName(partitions []int) string {
	if len(partitions) == 1 {
		return "rosen-cqrs-p" + strconv.Itoa(partitions[0])
	}
	if s.coversAll(partitions) {
		return "rosen-cqrs-all"
	}
	ps := make([]string, len(partitions))
	for i, p := range partitions {
		ps[i] = strconv.Itoa(p)
	}
	return "rosen-cqrs-p" + strings.Join(ps, "_")
}

// coversAll: partitions is every partition of the store (nil counts as all).
func (s *EventStore) coversAll(partitions []int) bool {
	if partitions == nil {
		return true
	}
	seen := make([]bool, s.cfg.Partitions)
	n := 0
	for _, p := range partitions {
		if p >= 0 && p < len(seen) && !seen[p] {
			seen[p] = true
			n++
		}
	}
	return n == len(seen)
}

// Consumer opens the durable consumer `name` for some partitions (nil: all):
// one consumer for all of a worker's partitions, so the server hands over
// the worker's events in stream order without skipping others (with every
// partition, it reads the stream unfiltered). Delivery restarts just after
// the point up to which every one of these partitions is acknowledged — by
// this consumer or by the consumers that served them before (one per
// partition, or another split) —, so after a crash or a change of workers
// every unacknowledged event comes again, in order, before new ones (a
// redelivery of an older event after a newer one would break per-key
// order; events already applied are skipped by the views' lane offsets).
func (s *EventStore) Consumer(ctx context.Context, name string, partitions []int, linger time.Duration) (Source, error) {
	for _, p := range partitions {
		if p < 0 || p >= s.cfg.Partitions {
			return nil, fmt.Errorf("%w: partition %d of %d", ErrConfig, p, s.cfg.Partitions)
		}
	}
	return s.pullConsumer(ctx, name, partitions, linger)
}

// createConsumer (re)creates the durable consumer of some partitions,
// starting just after their ack floor.
func (s *EventStore) createConsumer(ctx context.Context, name string, partitions []int) (jetstream.Consumer, error) {
	var filters []string
	if s.coversAll(partitions) {
		filters = []string{s.cfg.Subject + ".*.*"}
		partitions = make([]int, s.cfg.Partitions)
		for p := range partitions {
			partitions[p] = p
		}
	} else {
		for _, p := range partitions {
			filters = append(filters, s.cfg.Subject+"."+strconv.Itoa(p)+".*")
		}
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
	floors, err := s.partitionFloors(ctx, name)
	if err != nil {
		return nil, err
	}
	start := uint64(0)
	for i, p := range partitions {
		if i == 0 || floors[p] < start {
			start = floors[p]
		}
	}
	if start > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start+1
	}
	if err := s.stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("source: reset consumer %s: %w", name, err)
	}
	cons, err := s.stream.CreateConsumer(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("source: create consumer %s: %w", name, err)
	}
	return cons, nil
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
	end := strings.LastIndexByte(subject, '.')
	if end < 0 {
		return 0
	}
	start := strings.LastIndexByte(subject[:end], '.')
	p, _ := strconv.Atoi(subject[start+1 : end])
	return p
}

// AckFloor is the lowest acknowledged stream sequence over the store's
// partitions: for each partition the furthest ack floor of the durable
// consumers (rosen-cqrs-…) that serve it; a partition no consumer serves
// counts as 0.
func (s *EventStore) AckFloor(ctx context.Context, partitions int) (uint64, error) {
	floors, err := s.partitionFloors(ctx, "")
	if err != nil {
		return 0, err
	}
	var floor uint64
	for p := range min(partitions, len(floors)) {
		if p == 0 || floors[p] < floor {
			floor = floors[p]
		}
	}
	return floor, nil
}

// partitionFloors is, for each partition, the highest ack floor among the
// rosen-cqrs-… durable consumers (and the one named also) whose filters
// take the partition: every event of the partition up to it is committed
// (AckAll acknowledges only after a batch's commit).
func (s *EventStore) partitionFloors(ctx context.Context, also string) ([]uint64, error) {
	floors := make([]uint64, s.cfg.Partitions)
	list := s.stream.ListConsumers(ctx)
	for info := range list.Info() {
		if !strings.HasPrefix(info.Name, "rosen-cqrs-") && info.Name != also {
			continue
		}
		filters := info.Config.FilterSubjects
		if info.Config.FilterSubject != "" {
			filters = append(filters, info.Config.FilterSubject)
		}
		for p := range floors {
			if s.takes(filters, p) && info.AckFloor.Stream > floors[p] {
				floors[p] = info.AckFloor.Stream
			}
		}
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("source: list consumers: %w", err)
	}
	return floors, nil
}

// takes: one of the filters is the whole store or partition p's subjects.
func (s *EventStore) takes(filters []string, p int) bool {
	for _, f := range filters {
		if f == s.cfg.Subject+".*.*" || f == s.cfg.Subject+".>" || f == s.cfg.Subject+"."+strconv.Itoa(p)+".*" {
			return true
		}
	}
	return len(filters) == 0
}
