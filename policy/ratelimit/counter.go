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

// overLimit reports whether an enforced hit would exceed its limit. A key
// listed more than once (Envoy sends the same descriptor twice when two
// rate-limit actions produce it) counts all its hits, as applying them one
// after the other does (the Redis script).
func overLimit(hits []Hit, current []uint64) bool {
	if len(hits) == 1 {
		h := hits[0]
		return h.Enforce && current[0]+h.Hits > h.Limit
	}
	after := cumulative(hits, current)
	for i, h := range hits {
		if h.Enforce && after[i] > h.Limit {
			return true
		}
	}
	return false
}

// cumulative returns, for each hit, what its counter would be once it and
// the earlier hits on the same key were applied to current.
func cumulative(hits []Hit, current []uint64) []uint64 {
	out := make([]uint64, len(hits))
	added := make(map[string]uint64, len(hits)) // hits of the earlier entries, by key
	for i, h := range hits {
		prev := added[h.Key]
		added[h.Key] = prev + h.Hits
		out[i] = current[i] + prev + h.Hits
	}
	return out
}
