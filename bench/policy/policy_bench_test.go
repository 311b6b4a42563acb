// Package policy benchmarks Rosen's data-path policy services in-process:
// the ext_authz handler (20-rule Rego policy + RS256 JWT verification) and
// the RLS with in-memory and Redis counters. Run:
//
//	go test ./bench/policy -run '^$' -bench . -benchtime 3s
package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/redis/go-redis/v9"

	"github.com/rosenmesh/rosen/internal/testenv"
	"github.com/rosenmesh/rosen/policy/authz"
	"github.com/rosenmesh/rosen/policy/jwt"
	"github.com/rosenmesh/rosen/policy/jwt/testissuer"
	"github.com/rosenmesh/rosen/policy/ratelimit"
)

// twentyRules writes a policy with 20 allow rules on method, canonical path
// prefix and a JWT claim.
func twentyRules(b *testing.B) string {
	dir := b.TempDir()
	var sb strings.Builder
	sb.WriteString("package envoy.authz\n\nimport rego.v1\n\ndefault allow := false\n\n")
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&sb, "allow if {\n\tinput.attributes.request.http.method == \"GET\"\n\tstartswith(input.canonical_path, \"/svc%d/\")\n\tinput.jwt.role == \"r%d\"\n}\n\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkExtAuthzJWT20Rules: the whole Check handler on requests from
// 1,000 users, each with a token of its own (role r<u mod 20>) asking for
// the path its role allows; every token is verified once and then reused,
// as a client reuses its token across requests.
func BenchmarkExtAuthzJWT20Rules(b *testing.B) { benchExtAuthz(b, false) }

// BenchmarkExtAuthzGoroutinePerCall: the same, each Check called on a new
// goroutine as grpc-go's server does (its default, without NumStreamWorkers).
func BenchmarkExtAuthzGoroutinePerCall(b *testing.B) { benchExtAuthz(b, true) }

// authzFixture is the server and the 1,000 users' requests, built once per
// process (signing 1,000 tokens takes seconds; the benchmark framework calls
// a benchmark several times). The issuer stays up for the process.
var authzFixture struct {
	once sync.Once
	s    *authz.Server
	reqs []*authv3.CheckRequest
	err  error
}

func extAuthzFixture(b *testing.B) (*authz.Server, []*authv3.CheckRequest) {
	f := &authzFixture
	policyDir := twentyRules(b) // b.TempDir: removed after this call's benchmark; Reload has read it by then
	f.once.Do(func() {
		is, err := testissuer.Start()
		if err != nil {
			f.err = err
			return
		}
		v, _ := jwt.New([]jwt.Provider{{Issuer: is.URL(), Audiences: []string{"shop"}}}, jwt.Options{})
		// A deadline far above any decision: on a loaded machine a decision
		// can wait past the default 100ms and be denied (fail-closed, as
		// designed), which would stop the benchmark; it measures CPU here.
		f.s = authz.New(authz.Options{Tokens: v, Timeout: 10 * time.Second})
		if f.err = f.s.Reload(context.Background(), policyDir, ""); f.err != nil {
			return
		}
		f.reqs = make([]*authv3.CheckRequest, 1000)
		for u := range f.reqs {
			tok, err := is.Token(testissuer.Claims{Subject: fmt.Sprintf("u%d", u), Audience: []string{"shop"}, Extra: map[string]any{"role": fmt.Sprintf("r%d", u%20)}})
			if err != nil {
				f.err = err
				return
			}
			path := fmt.Sprintf("/svc%d/items?page=2", u%20)
			f.reqs[u] = &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: path, Host: "shop.example.com",
				Headers: map[string]string{":path": path, "authorization": "Bearer " + tok, "x-request-id": fmt.Sprintf("r%d", u)},
			}}}}
		}
	})
	if f.err != nil {
		b.Fatal(f.err)
	}
	return f.s, f.reqs
}

func benchExtAuthz(b *testing.B, goroutinePerCall bool) {
	s, reqs := extAuthzFixture(b)
	for _, r := range reqs { // each token verified once, as in a warm server
		if resp, _ := s.Check(context.Background(), r); resp.GetOkResponse() == nil {
			b.Fatalf("denied: %v", resp.GetStatus())
		}
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := reqs[next.Add(1)%int64(len(reqs))]
			var resp *authv3.CheckResponse
			if goroutinePerCall {
				done := make(chan struct{})
				go func() { resp, _ = s.Check(context.Background(), req); close(done) }()
				<-done
			} else {
				resp, _ = s.Check(context.Background(), req)
			}
			if resp.GetOkResponse() == nil {
				b.Fatalf("denied: %v", resp.GetStatus())
			}
		}
	})
	b.StopTimer()
	// CPU time per decision (user+system, all threads, GC included): unlike
	// ns/op it does not grow when other processes take the cores.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is this process's user+system time in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func benchRLS(b *testing.B, counters ratelimit.Counters) {
	s := ratelimit.New(ratelimit.Options{Counters: counters, KeyPrefix: "{" + testenv.UniqueName("bench") + "}|"})
	d, _ := ratelimit.ParseDomain("b.yaml", []byte("domain: d\ndescriptors:\n  - key: user\n    rate_limit: {unit: hour, requests_per_unit: 1000000000}\n"))
	c, _ := ratelimit.NewConfig(d)
	s.SetConfig(c)
	// 1,000 users' requests built beforehand: the benchmark measures the service.
	reqs := make([]*rlsv3.RateLimitRequest, 1000)
	for i := range reqs {
		reqs[i] = &rlsv3.RateLimitRequest{Domain: "d", Descriptors: []*commonrl.RateLimitDescriptor{{Entries: []*commonrl.RateLimitDescriptor_Entry{{Key: "user", Value: fmt.Sprint(i)}}}}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := s.ShouldRateLimit(context.Background(), reqs[i%len(reqs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRLSMemory(b *testing.B) { benchRLS(b, ratelimit.NewMemory()) }

func BenchmarkRLSRedis(b *testing.B) {
	client := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(b), PoolSize: 32})
	defer client.Close()
	benchRLS(b, ratelimit.NewRedis(client))
}
