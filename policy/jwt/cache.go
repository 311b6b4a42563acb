package jwt

import (
	"crypto/sha256"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultCacheSize is how many verified tokens a Verifier remembers.
const DefaultCacheSize = 10000

// maxCacheAge bounds how long a verified token is trusted without checking
// its signature again, so a key the issuer revoked stops working within it
// even when no rotation was observed.
const maxCacheAge = 5 * time.Minute

// cached is one verified token: its claims, the provider whose keys
// verified it and that provider's fetch epoch before verification.
type cached struct {
	claims map[string]any
	keys   *keys
	epoch  uint64
	until  time.Time
}

// tokenCache maps the SHA-256 of a compact JWT to its verified claims,
// least recently used first out. Entries are valid until the token's exp
// (plus skew) or maxCacheAge, and only while the provider has fetched no new
// keys since: a rotation re-verifies every token once, so a token signed by a
// retired key is rejected as soon as the new key set is seen.
type tokenCache struct {
	lru *lru.Cache[[sha256.Size]byte, *cached]
}

func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	c, _ := lru.New[[sha256.Size]byte, *cached](size) // size > 0: no error
	return &tokenCache{lru: c}
}

// get returns the claims of a verified token still valid at now.
func (c *tokenCache) get(sum [sha256.Size]byte, now time.Time) (map[string]any, bool) {
	if c == nil {
		return nil, false
	}
	e, ok := c.lru.Get(sum)
	if !ok {
		return nil, false
	}
	if now.After(e.until) || e.keys.epoch.Load() != e.epoch {
		c.lru.Remove(sum)
		return nil, false
	}
	return e.claims, true
}

func (c *tokenCache) add(sum [sha256.Size]byte, e *cached) {
	if c != nil {
		c.lru.Add(sum, e)
	}
}
