package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// applyScript decides a batch of requests in order, each atomically: it
// increments every counter of the request (EXPIRE on a counter's first
// increment) and, when an enforced one went over its limit, takes the
// increments back, so a rejected request consumes nothing. The script runs
// atomically on the Redis server, so a batch is exactly the same as its
// requests one after the other.
//
// ARGV: the number of requests, then per request the number of its keys and
// per key: hits, limit, enforce (1/0), ttl seconds. KEYS: every request's
// keys in order. Returns, per request, over (0/1) then its counts (after
// the increments, or as they stand when over).
var applyScript = redis.NewScript(`
local out = {}
local a = 2
local k = 1
for r = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a])
  a = a + 1
  local over = 0
  local counts = {}
  for i = 0, n - 1 do
    local base = a + i * 4
    local hits = tonumber(ARGV[base])
    local v = redis.call('INCRBY', KEYS[k + i], hits)
    if v == hits then
      redis.call('EXPIRE', KEYS[k + i], tonumber(ARGV[base + 3]))
    end
    counts[i + 1] = v
    if ARGV[base + 2] == '1' and v > tonumber(ARGV[base + 1]) then
      over = 1
    end
  end
  if over == 1 then
    for i = 0, n - 1 do
      redis.call('DECRBY', KEYS[k + i], tonumber(ARGV[a + i * 4]))
    end
    -- report each as it stands (a key listed twice was taken back twice)
    for i = 0, n - 1 do
      counts[i + 1] = tonumber(redis.call('GET', KEYS[k + i]) or '0')
    end
  end
  out[#out + 1] = over
  for i = 1, n do
    out[#out + 1] = counts[i]
  end
  a = a + n * 4
  k = k + n
end
return out
`)

// RedisOptions tune how requests are batched.
type RedisOptions struct {
	// MaxBatch is the most requests in one script call (default 128).
	MaxBatch int
	// MaxInFlight is the most script calls on the wire at once (default 4).
	// While they are all busy, new requests queue and go in the next batch:
	// under load one round trip decides many requests, with no waiting
	// window when the load is light.
	MaxInFlight int
}

// Redis keeps counters in a Redis server, shared by every Rosen replica.
// Concurrent requests are decided together, one round trip per batch (see
// run), each request still exact. A request's keys are evaluated in one
// script when it has several, so on Redis Cluster they must hash to one
// slot: the key prefix must carry a {hash tag}.
type Redis struct {
	client redis.UniversalClient
	opts   RedisOptions

	mu       sync.Mutex
	queue    []*redisCall
	inFlight int
}

// redisCall is one request waiting for its batch.
type redisCall struct {
	ctx    context.Context
	hits   []Hit
	counts []uint64
	over   bool
	err    error
	done   chan struct{}
}

var callPool = sync.Pool{New: func() any { return &redisCall{done: make(chan struct{}, 1)} }}

// NewRedis uses client for counters, with the default batching.
func NewRedis(client redis.UniversalClient) *Redis {
	return NewRedisWith(client, RedisOptions{})
}

// NewRedisWith uses client for counters, batched as opts say.
func NewRedisWith(client redis.UniversalClient, opts RedisOptions) *Redis {
	if opts.MaxBatch < 1 {
		opts.MaxBatch = 128
	}
	if opts.MaxInFlight < 1 {
		opts.MaxInFlight = 4
	}
	return &Redis{client: client, opts: opts}
}

// Apply implements Counters.
func (r *Redis) Apply(ctx context.Context, _ time.Time, hits []Hit) ([]uint64, bool, error) {
	c := callPool.Get().(*redisCall)
	c.ctx, c.hits, c.counts, c.over, c.err = ctx, hits, make([]uint64, len(hits)), false, nil
	r.mu.Lock()
	r.queue = append(r.queue, c)
	if r.inFlight < r.opts.MaxInFlight {
		r.inFlight++
		batch := r.take()
		r.mu.Unlock()
		r.flush(batch)
	} else {
		r.mu.Unlock()
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		// A batch that took c already may still apply the hits; one that
		// has not drops it (take). c is left to it (not pooled).
		return nil, false, fmt.Errorf("%w: %w", ErrCounter, ctx.Err())
	}
	counts, over, err := c.counts, c.over, c.err
	c.ctx, c.hits, c.counts = nil, nil, nil
	callPool.Put(c)
	return counts, over, err
}

// take removes up to MaxBatch queued calls; r.mu is held. Calls whose
// callers have given up (their context ended while Redis was slow or down)
// are dropped first: they were answered with an error, and kept they would
// pile up for as long as the outage lasts and then all count at once.
func (r *Redis) take() []*redisCall {
	live := r.queue[:0]
	for _, c := range r.queue {
		if c.ctx.Err() == nil {
			live = append(live, c)
		}
	}
	clear(r.queue[len(live):])
	r.queue = live
	n := min(len(r.queue), r.opts.MaxBatch)
	batch := make([]*redisCall, n)
	copy(batch, r.queue)
	rest := copy(r.queue, r.queue[n:])
	clear(r.queue[rest:])
	r.queue = r.queue[:rest]
	return batch
}

// flush runs a batch; if calls queued meanwhile, the next batch goes out on
// a new goroutine, so the caller returns with its own answer.
func (r *Redis) flush(batch []*redisCall) {
	r.run(batch)
	r.mu.Lock()
	next := r.take()
	if len(next) == 0 {
		r.inFlight--
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	go r.flush(next)
}

// run decides a batch and wakes its callers: the requests with one counter
// and one hit (almost all of them: Envoy sends hits_addend 1) as INCRBY +
// EXPIRE in one pipeline, the others in one script call.
//
// INCRBY by 1 needs no script to stay exact: a request only takes its
// increment back when the counter was already at its limit, so the brief
// excess can only be seen by requests that are over the limit anyway. A
// request with several counters (one must not consume the others when it is
// rejected) or more than one hit (its excess could reject a smaller request)
// goes through applyScript, atomic on the server.
func (r *Redis) run(batch []*redisCall) {
	var singles, multis []*redisCall
	for _, c := range batch {
		if len(c.hits) == 1 && c.hits[0].Hits == 1 {
			singles = append(singles, c)
		} else {
			multis = append(multis, c)
		}
	}
	if len(singles) > 0 {
		fail(singles, r.runSingles(singles))
	}
	if len(multis) > 0 {
		fail(multis, r.runScript(multis))
	}
	for _, c := range batch {
		c.done <- struct{}{}
	}
}

func fail(calls []*redisCall, err error) {
	if err == nil {
		return
	}
	for _, c := range calls {
		c.err = fmt.Errorf("%w: redis: %w", ErrCounter, err)
	}
}

func ttlOf(h Hit) time.Duration {
	ttl := h.TTL.Truncate(time.Second)
	if ttl < time.Second {
		ttl = time.Second
	}
	return ttl
}

// runSingles decides one-hit, one-counter requests with one pipeline of
// INCRBY and EXPIRE (the TTL is the rest of the window, so setting it again
// changes nothing), and a second one taking back the increments of the
// requests that went over.
func (r *Redis) runSingles(calls []*redisCall) error {
	// The batch serves many callers: no one caller's deadline bounds it (the
	// client's own timeouts do).
	ctx := context.Background()
	pipe := r.client.Pipeline()
	incr := make([]*redis.IntCmd, len(calls))
	for i, c := range calls {
		h := c.hits[0]
		incr[i] = pipe.IncrBy(ctx, h.Key, int64(h.Hits))
		pipe.Expire(ctx, h.Key, ttlOf(h))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	var back redis.Pipeliner
	for i, c := range calls {
		h, v := c.hits[0], uint64(incr[i].Val())
		c.counts[0] = v
		if h.Enforce && v > h.Limit {
			c.over, c.counts[0] = true, v-h.Hits
			if back == nil {
				back = r.client.Pipeline()
			}
			back.DecrBy(ctx, h.Key, int64(h.Hits))
		}
	}
	if back != nil {
		// The answers stand if this fails: the counters were at their
		// limits, so the excess rejects nothing that would have passed.
		_, _ = back.Exec(ctx)
	}
	return nil
}

// runScript decides requests in one applyScript call.
func (r *Redis) runScript(batch []*redisCall) error {
	nkeys := 0
	for _, c := range batch {
		nkeys += len(c.hits)
	}
	keys := make([]string, 0, nkeys)
	args := make([]any, 0, 1+len(batch)+4*nkeys)
	args = append(args, len(batch))
	for _, c := range batch {
		args = append(args, len(c.hits))
		for _, h := range c.hits {
			keys = append(keys, h.Key)
			enforce := "0"
			if h.Enforce {
				enforce = "1"
			}
			args = append(args, strconv.FormatUint(h.Hits, 10), strconv.FormatUint(h.Limit, 10), enforce, int64(ttlOf(h)/time.Second))
		}
	}
	res, err := applyScript.Run(context.Background(), r.client, keys, args...).Int64Slice()
	if err != nil {
		return err
	}
	if len(res) != len(batch)+nkeys {
		return fmt.Errorf("script returned %d values for %d requests with %d keys", len(res), len(batch), nkeys)
	}
	i := 0
	for _, c := range batch {
		c.over = res[i] == 1
		for j := range c.hits {
			c.counts[j] = uint64(res[i+1+j])
		}
		i += 1 + len(c.hits)
	}
	return nil
}
