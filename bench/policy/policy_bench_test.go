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
	"sync/atomic"
	"testing"

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
func BenchmarkExtAuthzJWT20Rules(b *testing.B) {
	is, err := testissuer.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer is.Close()
	v, _ := jwt.New([]jwt.Provider{{Issuer: is.URL(), Audiences: []string{"shop"}}}, jwt.Options{})
	s := authz.New(authz.Options{Tokens: v})
	if err := s.Reload(context.Background(), twentyRules(b), ""); err != nil {
		b.Fatal(err)
	}
	reqs := make([]*authv3.CheckRequest, 1000)
	for u := range reqs {
		tok, err := is.Token(testissuer.Claims{Subject: fmt.Sprintf("u%d", u), Audience: []string{"shop"}, Extra: map[string]any{"role": fmt.Sprintf("r%d", u%20)}})
		if err != nil {
			b.Fatal(err)
		}
		path := fmt.Sprintf("/svc%d/items?page=2", u%20)
		reqs[u] = &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: path, Host: "shop.example.com",
			Headers: map[string]string{":path": path, "authorization": "Bearer " + tok, "x-request-id": fmt.Sprintf("r%d", u)},
		}}}}
	}
	for _, r := range reqs { // each token verified once, as in a warm server
		if resp, _ := s.Check(context.Background(), r); resp.GetOkResponse() == nil {
			b.Fatalf("denied: %v", resp.GetStatus())
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, _ := s.Check(context.Background(), reqs[next.Add(1)%int64(len(reqs))])
			if resp.GetOkResponse() == nil {
				b.Fatalf("denied: %v", resp.GetStatus())
			}
		}
	})
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
