package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rosenmesh/rosen/internal/testenv"
)

// TestConcurrentExact: 400 concurrent requests, each on a shared key (limit
// 100) and a key of its own; with Redis they go out in batches (at most 2
// script calls in flight, so most batches hold many requests). Exactly 100
// pass, the shared counter ends at 100 and the rejected requests' own
// counters are untouched, as if each request had been decided alone.
func TestConcurrentExact(t *testing.T) {
	run := func(t *testing.T, counters Counters, prefix string) {
		const n, limit = 400, 100
		now := time.Now()
		shared := prefix + "shared"
		var passed atomic.Int64
		var mu sync.Mutex
		rejected := map[int]bool{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				hits := []Hit{
					{Key: shared, Hits: 1, Limit: limit, Enforce: true, TTL: time.Minute},
					{Key: prefix + "own" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Hits: 1, Limit: 5, Enforce: true, TTL: time.Minute},
				}
				counts, over, err := counters.Apply(context.Background(), now, hits)
				if err != nil {
					t.Error(err)
					return
				}
				if over {
					if counts[0] != limit {
						t.Errorf("rejected request sees shared count %d, want %d", counts[0], limit)
					}
					mu.Lock()
					rejected[i] = true
					mu.Unlock()
					return
				}
				passed.Add(1)
			}()
		}
		close(start)
		wg.Wait()
		if passed.Load() != limit {
			t.Fatalf("%d requests passed, want exactly %d", passed.Load(), limit)
		}
		// Every rejected request's own counter is still 0: one more hit makes it 1.
		for i := range rejected {
			counts, over, err := counters.Apply(context.Background(), now, []Hit{
				{Key: prefix + "own" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Hits: 1, Limit: 5, Enforce: true, TTL: time.Minute}})
			if err != nil || over || counts[0] != 1 {
				t.Fatalf("request %d: own counter %v over=%v err=%v, want 1", i, counts, over, err)
			}
		}
	}
	t.Run("memory", func(t *testing.T) { run(t, NewMemory(), "mem|") })
	t.Run("redis", func(t *testing.T) {
		client := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
		t.Cleanup(func() { _ = client.Close() })
		run(t, NewRedisWith(client, RedisOptions{MaxInFlight: 2, MaxBatch: 64}), "{"+testenv.UniqueName("rlb")+"}|")
	})
}

// A key listed twice in one request counts twice; when that takes it over,
// both increments are taken back.
func TestRedisDuplicateKeyRollback(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	t.Cleanup(func() { _ = client.Close() })
	r := NewRedis(client)
	key := "{" + testenv.UniqueName("rld") + "}|k"
	h := Hit{Key: key, Hits: 1, Limit: 2, Enforce: true, TTL: time.Minute}
	counts, over, err := r.Apply(context.Background(), time.Now(), []Hit{h, h})
	if err != nil || over || counts[1] != 2 {
		t.Fatalf("first: %v %v %v", counts, over, err)
	}
	counts, over, err = r.Apply(context.Background(), time.Now(), []Hit{h, h})
	if err != nil || !over || counts[0] != 2 || counts[1] != 2 {
		t.Fatalf("second: %v %v %v, want over with counts [2 2]", counts, over, err)
	}
	if ttl := client.TTL(context.Background(), key).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("ttl %v", ttl)
	}
}

// A caller whose context ends while its request is queued gets ErrCounter at
// once; its request is dropped from the queue (it was answered with an
// error: counting it later would charge a request the limiter never
// decided, and while Redis is slow or down the queue would grow with every
// such caller for as long as the outage lasts), and the store keeps working.
func TestRedisCallerCancel(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	t.Cleanup(func() { _ = client.Close() })
	r := NewRedisWith(client, RedisOptions{MaxInFlight: 1})
	key := "{" + testenv.UniqueName("rlc") + "}|k"
	hit := []Hit{{Key: key, Hits: 1, Limit: 9, Enforce: true, TTL: time.Minute}}
	r.mu.Lock()
	r.inFlight = 1 // the one slot is busy: the next caller queues
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := r.Apply(ctx, time.Now(), hit); !errors.Is(err, ErrCounter) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("queued caller past its deadline: %v", err)
			}
		}()
	}
	wg.Wait()
	r.mu.Lock()
	r.inFlight = 0
	r.mu.Unlock()
	counts, over, err := r.Apply(context.Background(), time.Now(), hit)
	if err != nil || over || counts[0] != 1 {
		t.Fatalf("next caller: %v %v %v, want count 1 (the abandoned requests dropped)", counts, over, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) != 0 || r.inFlight != 0 {
		t.Fatalf("queue %d, in flight %d after every caller returned", len(r.queue), r.inFlight)
	}
}

// TestConcurrentSingleExact: the INCRBY fast path (one counter, one hit)
// under 400 concurrent requests lets exactly the limit through, and the
// counter ends at the limit (every rejected increment taken back).
func TestConcurrentSingleExact(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	t.Cleanup(func() { _ = client.Close() })
	r := NewRedisWith(client, RedisOptions{MaxInFlight: 2, MaxBatch: 64})
	key := "{" + testenv.UniqueName("rls") + "}|k"
	const n, limit = 400, 100
	var passed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			counts, over, err := r.Apply(context.Background(), time.Now(), []Hit{{Key: key, Hits: 1, Limit: limit, Enforce: true, TTL: time.Minute}})
			if err != nil {
				t.Error(err)
				return
			}
			if !over {
				passed.Add(1)
			} else if counts[0] < limit {
				t.Errorf("rejected at count %d < %d", counts[0], limit)
			}
		}()
	}
	close(start)
	wg.Wait()
	if passed.Load() != limit {
		t.Fatalf("%d passed, want %d", passed.Load(), limit)
	}
	if got, _ := client.Get(context.Background(), key).Int(); got != limit {
		t.Fatalf("counter %d after the run, want %d", got, limit)
	}
	if ttl := client.TTL(context.Background(), key).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("ttl %v", ttl)
	}
}

// A hit of 5 that goes over is taken back whole (script path), so a later
// hit of 1 still fits.
func TestRedisBigHitTakenBack(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	t.Cleanup(func() { _ = client.Close() })
	r := NewRedis(client)
	key := "{" + testenv.UniqueName("rlh") + "}|k"
	apply := func(hits uint64) (uint64, bool) {
		counts, over, err := r.Apply(context.Background(), time.Now(), []Hit{{Key: key, Hits: hits, Limit: 10, Enforce: true, TTL: time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
		return counts[0], over
	}
	if c, over := apply(8); over || c != 8 {
		t.Fatalf("8: %d %v", c, over)
	}
	if c, over := apply(5); !over || c != 8 {
		t.Fatalf("5 more: %d %v, want over at 8", c, over)
	}
	if c, over := apply(1); over || c != 9 {
		t.Fatalf("1 more: %d %v, want 9", c, over)
	}
}
