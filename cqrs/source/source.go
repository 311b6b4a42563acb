// Package source delivers events to the CQRS engine: the JetStream event
// store (embedded or external), Kafka, RabbitMQ, and an HTTP endpoint that
// publishes into the event store. A batch is acknowledged to its broker
// only when the engine calls its Commit, after the sinks committed.
package source

import (
	"context"
	"errors"
	"hash/fnv"
)

// Sentinel errors.
var (
	ErrClosed = errors.New("source: closed")
	ErrConfig = errors.New("source: bad configuration")
)

// Msg is one delivered message.
type Msg struct {
	Data []byte
	Seq  uint64 // event-store sequence (stream sequence, Kafka offset); 0 when the broker has none
	// Partition is the broker partition the message came from (for metrics).
	Partition int
	// Lane names the ordered sequence Seq belongs to: the broker, stream or
	// topic, and partition ("js:ROSEN_CQRS:1", "kafka:orders:3"). Every
	// event of one key is in one lane, in Seq order.
	Lane string
}

// Batch is a run of messages acknowledged together.
type Batch struct {
	Msgs []Msg
	// Commit acknowledges every message of the batch to the broker.
	Commit func(ctx context.Context) error
}

// Source yields batches in per-partition order.
type Source interface {
	// Next blocks until at least one message is there (or ctx ends) and
	// returns up to max messages.
	Next(ctx context.Context, max int) (Batch, error)
	Close() error
}

// Partition maps an event key to one of n partitions (FNV-1a), so every event
// of one key is in one partition, in order.
func Partition(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}
