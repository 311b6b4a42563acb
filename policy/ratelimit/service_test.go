package ratelimit

import (
	"context"
	"sync"
	"testing"
	"time"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rosenmesh/rosen/internal/testenv"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// stores runs a test against the in-memory counters and against real Redis.
func stores(t *testing.T, f func(t *testing.T, counters Counters, prefix string)) {
	t.Run("memory", func(t *testing.T) { f(t, NewMemory(), "mem|") })
	t.Run("redis", func(t *testing.T) {
		client := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
		t.Cleanup(func() { _ = client.Close() })
		f(t, NewRedis(client), "{"+testenv.UniqueName("rl")+"}|")
	})
}

func newService(t *testing.T, counters Counters, prefix string, clk *clock) *Service {
	t.Helper()
	s := New(Options{Counters: counters, KeyPrefix: prefix, Now: clk.Now, Headers: true})
	if err := s.Reload("testdata/shop.yaml"); err != nil {
		t.Fatal(err)
	}
	return s
}

func desc(kv ...string) *commonrl.RateLimitDescriptor {
	d := &commonrl.RateLimitDescriptor{}
	for i := 0; i < len(kv); i += 2 {
		d.Entries = append(d.Entries, &commonrl.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return d
}

func ask(t *testing.T, s *Service, ds ...*commonrl.RateLimitDescriptor) *rlsv3.RateLimitResponse {
	t.Helper()
	resp, err := s.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "shop", Descriptors: ds})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func codesOf(r *rlsv3.RateLimitResponse) []rlsv3.RateLimitResponse_Code {
	var out []rlsv3.RateLimitResponse_Code
	for _, s := range r.GetStatuses() {
		out = append(out, s.GetCode())
	}
	return out
}

const (
	ok   = rlsv3.RateLimitResponse_OK
	over = rlsv3.RateLimitResponse_OVER_LIMIT
)

// TestWindowBoundary: 3 per minute hold exactly on both sides of a minute
// boundary: the 4th request of a window is rejected, the first of the next
// window is accepted.
func TestWindowBoundary(t *testing.T) {
	stores(t, func(t *testing.T, counters Counters, prefix string) {
		clk := &clock{t: time.Date(2030, 1, 1, 10, 0, 59, 900_000_000, time.UTC)}
		s := newService(t, counters, prefix, clk)
		d := desc("remote_address", "10.0.0.1")
		for i := 0; i < 3; i++ {
			if r := ask(t, s, d); r.GetOverallCode() != ok {
				t.Fatalf("request %d in window 1: %v", i+1, r.GetOverallCode())
			}
		}
		r := ask(t, s, d)
		if r.GetOverallCode() != over {
			t.Fatal("4th request in window 1 allowed")
		}
		if got := r.GetStatuses()[0].GetDurationUntilReset().AsDuration(); got != 100*time.Millisecond {
			t.Fatalf("reset %v", got)
		}
		clk.Set(time.Date(2030, 1, 1, 10, 1, 0, 0, time.UTC))
		for i := 0; i < 3; i++ {
			r := ask(t, s, d)
			if r.GetOverallCode() != ok {
				t.Fatalf("request %d in window 2: %v", i+1, r.GetOverallCode())
			}
			if rem := r.GetStatuses()[0].GetLimitRemaining(); rem != uint32(2-i) {
				t.Fatalf("remaining %d after %d", rem, i+1)
			}
		}
		if ask(t, s, d).GetOverallCode() != over {
			t.Fatal("4th request in window 2 allowed")
		}
		// Another address has its own counter.
		if ask(t, s, desc("remote_address", "10.0.0.2")).GetOverallCode() != ok {
			t.Fatal("other address limited")
		}
	})
}

// TestNoCollision: ("a_b","c") and ("a","b_c") have separate counters.
func TestNoCollision(t *testing.T) {
	stores(t, func(t *testing.T, counters Counters, prefix string) {
		s := newService(t, counters, prefix, &clock{t: time.Date(2030, 1, 1, 10, 0, 0, 0, time.UTC)})
		for i := 0; i < 2; i++ {
			if ask(t, s, desc("a_b", "c")).GetOverallCode() != ok {
				t.Fatal("a_b=c limited early")
			}
		}
		if ask(t, s, desc("a_b", "c")).GetOverallCode() != over {
			t.Fatal("a_b=c not limited")
		}
		if r := ask(t, s, desc("a", "b_c")); r.GetOverallCode() != ok || r.GetStatuses()[0].GetLimitRemaining() != 1 {
			t.Fatalf("a=b_c shares a counter with a_b=c: %v", r)
		}
	})
}

// TestNoQuotaDrain: a request rejected by one descriptor does not consume
// its other descriptors' quota.
func TestNoQuotaDrain(t *testing.T) {
	stores(t, func(t *testing.T, counters Counters, prefix string) {
		s := newService(t, counters, prefix, &clock{t: time.Date(2030, 1, 1, 10, 0, 0, 0, time.UTC)})
		user := desc("user", "alice", "plan", "free") // 1 per hour
		ip := desc("remote_address", "10.0.0.9")      // 3 per minute
		if r := ask(t, s, user, ip); r.GetOverallCode() != ok {
			t.Fatal("first request limited")
		}
		for i := 0; i < 5; i++ {
			r := ask(t, s, user, ip)
			if got := codesOf(r); r.GetOverallCode() != over || got[0] != over || got[1] != ok {
				t.Fatalf("request %d: %v %v", i+2, r.GetOverallCode(), got)
			}
		}
		// The address still has 2 of its 3: the five rejected requests took nothing.
		for i := 0; i < 2; i++ {
			if ask(t, s, ip).GetOverallCode() != ok {
				t.Fatalf("address quota drained by rejected requests (request %d)", i+1)
			}
		}
		if ask(t, s, ip).GetOverallCode() != over {
			t.Fatal("address limit not enforced")
		}
	})
}

func TestShadowUnlimitedAndHeaders(t *testing.T) {
	stores(t, func(t *testing.T, counters Counters, prefix string) {
		s := newService(t, counters, prefix, &clock{t: time.Date(2030, 1, 1, 10, 0, 30, 0, time.UTC)})
		for i := 0; i < 3; i++ {
			if ask(t, s, desc("shadow", "x")).GetOverallCode() != ok {
				t.Fatal("shadow-mode limit rejected a request")
			}
		}
		r := ask(t, s, desc("path", "/api/cheap"))
		if r.GetOverallCode() != ok || r.GetStatuses()[0].GetCurrentLimit() != nil {
			t.Fatalf("unlimited: %v", r)
		}
		r = ask(t, s, desc("remote_address", "10.1.1.1"))
		h := map[string]string{}
		for _, hv := range r.GetResponseHeadersToAdd() {
			h[hv.GetKey()] = hv.GetValue()
		}
		if h["x-ratelimit-limit"] != "3, 3;w=60" || h["x-ratelimit-remaining"] != "2" || h["x-ratelimit-reset"] != "30" {
			t.Fatalf("headers %v", h)
		}
	})
}

func TestBadRequests(t *testing.T) {
	s := New(Options{})
	for _, req := range []*rlsv3.RateLimitRequest{
		{},
		{Domain: "shop"},
		{Domain: "shop", Descriptors: []*commonrl.RateLimitDescriptor{{}}},
	} {
		_, err := s.ShouldRateLimit(context.Background(), req)
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("%v: %v", req, err)
		}
	}
	// An unknown domain limits nothing.
	r, err := s.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "x", Descriptors: []*commonrl.RateLimitDescriptor{desc("a", "b")}})
	if err != nil || r.GetOverallCode() != ok {
		t.Fatal(r, err)
	}
}

func TestRedisDownIsUnavailable(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer client.Close()
	s := New(Options{Counters: NewRedis(client)})
	if err := s.Reload("testdata/shop.yaml"); err != nil {
		t.Fatal(err)
	}
	_, err := s.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "shop", Descriptors: []*commonrl.RateLimitDescriptor{desc("remote_address", "x")}})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("err %v", err)
	}
}

func TestMemorySweep(t *testing.T) {
	m := NewMemory()
	now := time.Unix(1000, 0)
	if _, _, err := m.Apply(context.Background(), now, []Hit{{Key: "k", Hits: 1, Limit: 5, Enforce: true, TTL: time.Second}}); err != nil {
		t.Fatal(err)
	}
	if m.Sweep(now.Add(2*time.Second)) != 1 || m.Len() != 0 {
		t.Fatal("expired counter kept")
	}
}
