package ratelimit

import (
	"context"
	"errors"
	"time"
)

// ErrCounter is a counter store that failed (Redis down); the service
// answers with a gRPC error and Envoy applies its failure_mode_deny.
var ErrCounter = errors.New("ratelimit: counter store failed")

// Hit is one descriptor's share of a request.
type Hit struct {
	Key   string
	Hits  uint64
	Limit uint64
	// Enforce is false for shadow-mode limits: they count but never reject.
	Enforce bool
	TTL     time.Duration
}

// Counters applies a request's hits atomically: when any enforced hit would
// take its counter over its limit, no counter moves (a request rejected by
// one descriptor consumes none of its other descriptors' quota) and Apply
// returns the counts as they stand with over=true; otherwise every counter
// is incremented and the new counts are returned.
type Counters interface {
	Apply(ctx context.Context, now time.Time, hits []Hit) (counts []uint64, over bool, err error)
}

// overLimit reports which enforced hits would exceed their limit.
func overLimit(hits []Hit, current []uint64) bool {
	for i, h := range hits {
		if h.Enforce && current[i]+h.Hits > h.Limit {
			return true
		}
	}
	return false
}
