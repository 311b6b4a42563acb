package ratelimit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestDuplicateDescriptor: Envoy sends one descriptor twice when two
// rate-limit actions produce it (a client can arrange that with headers).
// Both copies count, on every store alike: with 3 per minute, the first
// request takes 2, the second would take the count to 4 and is rejected
// without consuming anything, so one single request still fits. (Redis used
// to take back the over-limit increments and then answer OK: with an odd
// limit, every request from then on passed without counting.)
func TestDuplicateDescriptor(t *testing.T) {
	stores(t, func(t *testing.T, counters Counters, prefix string) {
		clk := &clock{t: time.Unix(1_700_000_000, 0)}
		s := newService(t, counters, prefix, clk)
		d := desc("remote_address", "10.1.1.1")
		for i, want := range []rlsv3.RateLimitResponse_Code{ok, over, over} {
			if got := ask(t, s, d, d).GetOverallCode(); got != want {
				t.Fatalf("request %d with the descriptor twice: %v, want %v", i, got, want)
			}
		}
		if got := ask(t, s, d).GetOverallCode(); got != ok {
			t.Fatalf("single request after the rejected ones: %v, want OK (count 3 of 3)", got)
		}
		if got := ask(t, s, d).GetOverallCode(); got != over {
			t.Fatalf("fourth hit: %v, want OVER_LIMIT", got)
		}
	})
}

// TestHugeHitsAddend: a descriptor's hits_addend (uint64) beyond what a
// counter can add is over the limit on every store, not a Redis error
// (ERR value is not an integer) that Envoy's default failure mode allows.
func TestHugeHitsAddend(t *testing.T) {
	stores(t, func(t *testing.T, counters Counters, prefix string) {
		clk := &clock{t: time.Unix(1_700_000_000, 0)}
		s := newService(t, counters, prefix, clk)
		for _, n := range []uint64{1 << 63, ^uint64(0)} {
			d := desc("remote_address", "10.2.2.2")
			d.HitsAddend = wrapperspb.UInt64(n)
			resp, err := s.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "shop", Descriptors: []*commonrl.RateLimitDescriptor{d}})
			if err != nil || resp.GetOverallCode() != over {
				t.Fatalf("hits_addend %d: %v %v, want OVER_LIMIT", n, resp.GetOverallCode(), err)
			}
		}
		if got := ask(t, s, desc("remote_address", "10.2.2.2")).GetOverallCode(); got != ok {
			t.Fatalf("a normal request after them: %v, want OK (nothing consumed)", got)
		}
	})
}

// TestNamedPipeInConfigFolder: a named pipe among the rate-limit files is an
// error naming it, and the configuration in force stays. Reading it used to
// block for ever, and with it every later reload.
func TestNamedPipeInConfigFolder(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	s := New(Options{})
	if err := s.Reload(dir); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "q.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err) // Linux, where CI runs: a skip would hide the test
	}
	done := make(chan error, 1)
	go func() { done <- s.Reload(dir) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("reload with a named pipe: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reload blocked on the named pipe")
	}
	if !s.Config().HasDomain("shop") {
		t.Fatal("the configuration in force changed")
	}
}

// TestLimitWithoutRequestsPerUnit: a rate_limit that forgets
// requests_per_unit is an error naming the field (as ParseDomain promises);
// it was read as 0, which rejects every request the descriptor matches. An
// explicit 0 stays allowed.
func TestLimitWithoutRequestsPerUnit(t *testing.T) {
	_, err := ParseDomain("shop.yaml", []byte("domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: b\n        rate_limit: {unit: minute}\n"))
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "shop.yaml: descriptors[0].descriptors[0].rate_limit.requests_per_unit: required") {
		t.Fatalf("missing requests_per_unit: %v", err)
	}
	if _, err := ParseDomain("shop.yaml", []byte("domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: minute, requests_per_unit: 0}\n")); err != nil {
		t.Fatalf("explicit 0: %v", err)
	}
	if _, err := ParseDomain("shop.yaml", []byte("domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unlimited: true}\n")); err != nil {
		t.Fatalf("unlimited: %v", err)
	}
}
