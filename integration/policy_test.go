package integration

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rosenmesh/rosen/policy/authz"
	"github.com/rosenmesh/rosen/policy/jwt"
	"github.com/rosenmesh/rosen/policy/jwt/testissuer"
	"github.com/rosenmesh/rosen/policy/ratelimit"
)

// TestPolicyOverGRPC: ext_authz (Rego + JWT from a real issuer, with a key
// rotation mid-run) and the RLS, called over loopback gRPC as Envoy calls them.
func TestPolicyOverGRPC(t *testing.T) {
	is, err := testissuer.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer is.Close()
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package envoy.authz\n\nimport rego.v1\n\ndefault allow := false\n\nallow if input.jwt.sub == \"alice\"\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "limits.yaml"), []byte("domain: gw\ndescriptors:\n  - key: user\n    rate_limit: {unit: hour, requests_per_unit: 1}\n"), 0o644)
	v, _ := jwt.New([]jwt.Provider{{Issuer: is.URL()}}, jwt.Options{})
	az := authz.New(authz.Options{Tokens: v})
	if err := az.Reload(context.Background(), dir, ""); err != nil {
		t.Fatal(err)
	}
	rl := ratelimit.New(ratelimit.Options{})
	if err := rl.Reload(filepath.Join(dir, "limits.yaml")); err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	az.Register(srv)
	rl.Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authc, rlc := authv3.NewAuthorizationClient(conn), rlsv3.NewRateLimitServiceClient(conn)

	check := func(auth string) int32 {
		resp, err := authc.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/", Headers: map[string]string{"Authorization": auth}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetOkResponse() != nil {
			return 200
		}
		return int32(resp.GetDeniedResponse().GetStatus().GetCode())
	}
	alice, _ := is.Token(testissuer.Claims{Subject: "alice"})
	bob, _ := is.Token(testissuer.Claims{Subject: "bob"})
	if got := check("Bearer " + alice); got != 200 {
		t.Fatalf("alice: %d", got)
	}
	if got := check("Bearer " + bob); got != 403 {
		t.Fatalf("bob: %d", got)
	}
	if got := check("Bearer " + alice + "x"); got != 401 {
		t.Fatalf("forged: %d", got)
	}
	_ = is.Rotate(true)
	rotated, _ := is.Token(testissuer.Claims{Subject: "alice"})
	if got := check("Bearer " + rotated); got != 200 {
		t.Fatalf("after rotation: %d", got)
	}
	if got := check("Bearer " + alice); got != 401 {
		t.Fatalf("retired key: %d", got)
	}

	ask := func() rlsv3.RateLimitResponse_Code {
		r, err := rlc.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "gw", Descriptors: []*commonrl.RateLimitDescriptor{
			{Entries: []*commonrl.RateLimitDescriptor_Entry{{Key: "user", Value: "alice"}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetOverallCode()
	}
	if ask() != rlsv3.RateLimitResponse_OK || ask() != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Fatal("rate limit of 1 per hour not enforced over gRPC")
	}
}
