package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// applyScript checks every enforced counter, then increments all of them
// (INCRBY, with EXPIRE on a counter's first increment) only when none would
// go over: one round trip, atomic on the Redis server.
// ARGV per key: hits, limit, enforce (1/0), ttl seconds.
// Returns {over (0/1), count1, count2, ...}.
var applyScript = redis.NewScript(`
local n = #KEYS
local counts = {}
local over = 0
for i = 1, n do
  local c = tonumber(redis.call('GET', KEYS[i]) or '0')
  counts[i] = c
  local base = (i - 1) * 4
  if ARGV[base + 3] == '1' and c + tonumber(ARGV[base + 1]) > tonumber(ARGV[base + 2]) then
    over = 1
  end
end
if over == 0 then
  for i = 1, n do
    local base = (i - 1) * 4
    local hits = tonumber(ARGV[base + 1])
    local v = redis.call('INCRBY', KEYS[i], hits)
    if v == hits then
      redis.call('EXPIRE', KEYS[i], tonumber(ARGV[base + 4]))
    end
    counts[i] = v
  end
end
table.insert(counts, 1, over)
return counts
`)

// Redis keeps counters in a Redis server, shared by every Rosen replica.
// A request's keys are evaluated in one script, so on Redis Cluster they
// must hash to one slot (the key prefix can carry a {hash tag}).
type Redis struct {
	client redis.UniversalClient
}

// NewRedis uses client for counters.
func NewRedis(client redis.UniversalClient) *Redis { return &Redis{client: client} }

// Apply implements Counters.
func (r *Redis) Apply(ctx context.Context, _ time.Time, hits []Hit) ([]uint64, bool, error) {
	keys := make([]string, len(hits))
	args := make([]any, 0, 4*len(hits))
	for i, h := range hits {
		keys[i] = h.Key
		enforce := "0"
		if h.Enforce {
			enforce = "1"
		}
		ttl := int64(h.TTL / time.Second)
		if ttl < 1 {
			ttl = 1
		}
		args = append(args, h.Hits, h.Limit, enforce, ttl)
	}
	res, err := applyScript.Run(ctx, r.client, keys, args...).Int64Slice()
	if err != nil {
		return nil, false, fmt.Errorf("%w: redis: %w", ErrCounter, err)
	}
	if len(res) != len(hits)+1 {
		return nil, false, fmt.Errorf("%w: redis script returned %d values for %d keys", ErrCounter, len(res), len(hits))
	}
	counts := make([]uint64, len(hits))
	for i := range hits {
		counts[i] = uint64(res[i+1])
	}
	return counts, res[0] == 1, nil
}
