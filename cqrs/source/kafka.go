package source

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaConfig is a consumer-group source.
type KafkaConfig struct {
	Brokers []string
	Topic   string
	Group   string
}

// kafkaSource reads a topic in a consumer group and commits offsets only in
// Commit. A key's records live in one partition, so the record offset (+1)
// in the lane "kafka:<topic>:<partition>" is the event's sequence.
type kafkaSource struct {
	cl *kgo.Client
}

// NewKafka joins the consumer group.
func NewKafka(cfg KafkaConfig) (Source, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" || cfg.Group == "" {
		return nil, fmt.Errorf("%w: kafka needs brokers, topic and group", ErrConfig)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumerGroup(cfg.Group),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(), // a batch is never revoked between poll and commit
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: kafka: %w", ErrConfig, err)
	}
	return &kafkaSource{cl: cl}, nil
}

func (k *kafkaSource) Next(ctx context.Context, max int) (Batch, error) {
	for {
		fs := k.cl.PollRecords(ctx, max)
		if fs.IsClientClosed() {
			return Batch{}, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			k.cl.AllowRebalance()
			return Batch{}, err
		}
		var errs []error
		fs.EachError(func(_ string, _ int32, err error) { errs = append(errs, err) })
		recs := fs.Records()
		if len(recs) == 0 {
			k.cl.AllowRebalance()
			if len(errs) > 0 {
				return Batch{}, fmt.Errorf("source: kafka fetch: %w", errs[0])
			}
			continue
		}
		b := Batch{Msgs: make([]Msg, len(recs))}
		for i, r := range recs {
			b.Msgs[i] = Msg{Data: r.Value, Seq: uint64(r.Offset) + 1, Partition: int(r.Partition), Lane: "kafka:" + r.Topic + ":" + strconv.Itoa(int(r.Partition))}
		}
		b.Commit = func(ctx context.Context) error {
			defer k.cl.AllowRebalance()
			if err := k.cl.CommitRecords(ctx, recs...); err != nil {
				return fmt.Errorf("source: kafka commit: %w", err)
			}
			return nil
		}
		return b, nil
	}
}

// Close leaves the group without committing what was not committed.
func (k *kafkaSource) Close() error {
	k.cl.AllowRebalance() // a blocked rebalance would hold LeaveGroup forever
	k.cl.Close()
	return nil
}
