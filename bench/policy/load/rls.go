package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	commonrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// runRLS sends ShouldRateLimit requests, as Envoy's ratelimit filter
// does, to the RLS at target (Rosen's or envoyproxy/ratelimit's) at each
// rate, open loop like the ext_authz run. Request i carries one descriptor
// user=u<i mod users>, so the server increments one of users counters per
// decision; the limit in bench/policy/rlbench.yaml is high enough that
// every answer is OK and "denied" counts OVER_LIMIT answers.
func runRLS(target, domain string, users, serverPID int, rates string, duration time.Duration, nconns int) error {
	if !strings.HasPrefix(target, "127.") && !strings.HasPrefix(target, "localhost:") {
		return fmt.Errorf("-target %q: only loopback targets", target)
	}
	if users <= 0 {
		return fmt.Errorf("-users %d: must be positive", users)
	}
	clients := make([]rlsv3.RateLimitServiceClient, nconns)
	for i := range clients {
		cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("dial %s: %w", target, err)
		}
		defer cc.Close()
		clients[i] = rlsv3.NewRateLimitServiceClient(cc)
	}
	reqs := make([]*rlsv3.RateLimitRequest, users)
	for u := range reqs {
		reqs[u] = &rlsv3.RateLimitRequest{Domain: domain, HitsAddend: 1, Descriptors: []*commonrlv3.RateLimitDescriptor{{
			Entries: []*commonrlv3.RateLimitDescriptor_Entry{{Key: "user", Value: "u" + strconv.Itoa(u)}},
		}}}
	}
	// One call that must succeed before any timing: a wrong domain or a
	// dead target is an error here, not a table of failures.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	resp, err := clients[0].ShouldRateLimit(ctx, reqs[0])
	cancel()
	if err != nil {
		return fmt.Errorf("first ShouldRateLimit to %s: %w", target, err)
	}
	fmt.Printf("target %s, first answer %s, GOMAXPROCS %d, %d connections, %d users, %s per rate\n",
		target, resp.GetOverallCode(), runtime.GOMAXPROCS(0), nconns, users, duration)
	send := func(ctx context.Context, i int) (bool, error) {
		resp, err := clients[i%len(clients)].ShouldRateLimit(ctx, reqs[i%len(reqs)])
		return resp.GetOverallCode() == rlsv3.RateLimitResponse_OK, err
	}
	fmt.Println("rate/s  sent  errors  denied  p50  p90  p99  max  achieved  rpc_p50  rpc_p99  rpc_max  srv_cpu/req  load_cpu/req")
	for _, r := range strings.Split(rates, ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || rate <= 0 {
			return fmt.Errorf("rate %q", r)
		}
		fmt.Println(measuredPhase(send, rate, duration, serverPID))
	}
	return nil
}
