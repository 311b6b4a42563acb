package policy

import (
	"context"
	"testing"

	commonrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"

	"github.com/rosenmesh/rosen/policy/ratelimit"
)

// TestRLBenchConfig keeps the side-by-side benchmark's YAML (which
// envoyproxy/ratelimit loads too, see RESULTS.md) accepted by Rosen and
// answering what the load program expects: user=… under the per-second
// limit, path=/api + plan=free under the per-minute one, /health unlimited.
func TestRLBenchConfig(t *testing.T) {
	c, err := ratelimit.LoadDir("rlbench.yaml")
	if err != nil {
		t.Fatalf("rlbench.yaml: %v", err)
	}
	s := ratelimit.New(ratelimit.Options{})
	s.SetConfig(c)
	entries := func(kv ...string) *commonrlv3.RateLimitDescriptor {
		d := &commonrlv3.RateLimitDescriptor{}
		for i := 0; i < len(kv); i += 2 {
			d.Entries = append(d.Entries, &commonrlv3.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
		}
		return d
	}
	cases := []struct {
		desc *commonrlv3.RateLimitDescriptor
		unit rlsv3.RateLimitResponse_RateLimit_Unit
		rpu  uint32
	}{
		{entries("user", "u7"), rlsv3.RateLimitResponse_RateLimit_SECOND, 1000000},
		{entries("path", "/api", "plan", "free"), rlsv3.RateLimitResponse_RateLimit_MINUTE, 100000000},
		{entries("path", "/health"), rlsv3.RateLimitResponse_RateLimit_UNKNOWN, 0},
	}
	for _, tc := range cases {
		resp, err := s.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "rlbench", Descriptors: []*commonrlv3.RateLimitDescriptor{tc.desc}})
		if err != nil {
			t.Fatalf("%v: %v", tc.desc, err)
		}
		if resp.GetOverallCode() != rlsv3.RateLimitResponse_OK || len(resp.GetStatuses()) != 1 {
			t.Fatalf("%v: %v", tc.desc, resp)
		}
		if l := resp.GetStatuses()[0].GetCurrentLimit(); l.GetUnit() != tc.unit || l.GetRequestsPerUnit() != tc.rpu {
			t.Errorf("%v: limit %v, want %v %d", tc.desc, l, tc.unit, tc.rpu)
		}
	}
}
