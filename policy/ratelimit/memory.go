package ratelimit

import (
	"context"
	"hash/maphash"
	"sort"
	"sync"
	"time"
)

const memoryShards = 64

type memEntry struct {
	count   uint64
	expires time.Time
}

type memShard struct {
	mu sync.Mutex
	m  map[string]memEntry
}

// Memory keeps counters in this process: the embedded default, exact for
// one Rosen replica. Keys expire with their window.
type Memory struct {
	seed   maphash.Seed
	shards [memoryShards]memShard
}

// NewMemory returns an empty in-memory counter store.
func NewMemory() *Memory {
	m := &Memory{seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].m = map[string]memEntry{}
	}
	return m
}

func (m *Memory) shard(key string) int {
	return int(maphash.String(m.seed, key) % memoryShards)
}

// Apply implements Counters; the shards a request touches are locked in
// index order, so the check and the increments are one atomic step.
func (m *Memory) Apply(_ context.Context, now time.Time, hits []Hit) ([]uint64, bool, error) {
	idx := make([]int, len(hits))
	locks := make([]int, 0, len(hits))
	for i, h := range hits {
		idx[i] = m.shard(h.Key)
		locks = append(locks, idx[i])
	}
	sort.Ints(locks)
	for i, s := range locks {
		if i == 0 || s != locks[i-1] {
			m.shards[s].mu.Lock()
		}
	}
	defer func() {
		for i, s := range locks {
			if i == 0 || s != locks[i-1] {
				m.shards[s].mu.Unlock()
			}
		}
	}()
	counts := make([]uint64, len(hits))
	for i, h := range hits {
		e, ok := m.shards[idx[i]].m[h.Key]
		if ok && !now.Before(e.expires) {
			e = memEntry{}
		}
		counts[i] = e.count
	}
	if overLimit(hits, counts) {
		return counts, true, nil
	}
	for i, h := range hits {
		sh := &m.shards[idx[i]]
		e, ok := sh.m[h.Key]
		if !ok || !now.Before(e.expires) {
			e = memEntry{expires: now.Add(h.TTL)}
		}
		e.count += h.Hits
		sh.m[h.Key] = e
		counts[i] = e.count
	}
	return counts, false, nil
}

// Sweep drops expired counters; `rosen serve` calls it periodically.
func (m *Memory) Sweep(now time.Time) (removed int) {
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			if !now.Before(e.expires) {
				delete(sh.m, k)
				removed++
			}
		}
		sh.mu.Unlock()
	}
	return removed
}

// Len is the number of live counters (for tests and /debug).
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		m.shards[i].mu.Lock()
		n += len(m.shards[i].m)
		m.shards[i].mu.Unlock()
	}
	return n
}
