package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/rosenmesh/rosen/controlplane/xds"
	"github.com/rosenmesh/rosen/policy/authz"
	"github.com/rosenmesh/rosen/policy/jwt"
	"github.com/rosenmesh/rosen/policy/jwt/testissuer"
)

// twentyRules is the benchmark policy: 20 allow rules on method, canonical
// path prefix and a JWT claim (the same as bench/policy's in-process one).
func twentyRules() string {
	var sb strings.Builder
	sb.WriteString("package envoy.authz\n\nimport rego.v1\n\ndefault allow := false\n\n")
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&sb, "allow if {\n\tinput.attributes.request.http.method == \"GET\"\n\tstartswith(input.canonical_path, \"/svc%d/\")\n\tinput.jwt.role == \"r%d\"\n}\n\n", i, i)
	}
	return sb.String()
}

// serve runs Rosen's ext_authz (20-rule policy, JWT verification against
// an in-process OIDC issuer) on 127.0.0.1 with the gRPC server options
// `rosen serve` uses, prints "addr N" and then N tokens (user i: sub u<i>,
// role r<i mod 20>), one a line, on stdout for the load process, and serves
// until stdin closes. workers > 0 sets grpc.NumStreamWorkers. With floor,
// the gRPC server answers every Check with an empty OK and does nothing
// else: the transport's own cost and latency on this machine, the floor
// under any ext_authz handler (not Rosen's answer: a measurement only).
func serve(users, workers int, floor bool) error {
	if users <= 0 {
		return fmt.Errorf("-users %d: must be positive", users)
	}
	if f := os.Getenv("AUTHZLOAD_CPUPROFILE"); f != "" { // profile of the server side of a run
		out, err := os.Create(f)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); _ = out.Close() }()
	}
	is, err := testissuer.Start()
	if err != nil {
		return err
	}
	defer is.Close()
	v, err := jwt.New([]jwt.Provider{{Issuer: is.URL(), Audiences: []string{"shop"}}}, jwt.Options{})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "authz-load")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(twentyRules()), 0o644); err != nil {
		return err
	}
	s := authz.New(authz.Options{Tokens: v})
	if err := s.Reload(context.Background(), dir, ""); err != nil {
		return err
	}
	toks := make([]string, users)
	for i := range toks {
		toks[i], err = is.Token(testissuer.Claims{Subject: fmt.Sprintf("u%d", i), Audience: []string{"shop"},
			Extra: map[string]any{"role": fmt.Sprintf("r%d", i%20)}})
		if err != nil {
			return err
		}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	opts := xds.ServerOptions() // as cmd/rosen serve builds its gRPC server
	if workers > 0 {
		opts = append(opts, grpc.NumStreamWorkers(uint32(workers)))
	}
	g := grpc.NewServer(opts...)
	if floor {
		authv3.RegisterAuthorizationServer(g, floorServer{})
	} else {
		s.Register(g)
	}
	go func() { _ = g.Serve(lis) }()
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "%s %d\n", lis.Addr(), len(toks))
	for _, t := range toks {
		fmt.Fprintln(w, t)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	_, _ = os.Stdin.Read(make([]byte, 1)) // the parent closes stdin to stop us
	g.Stop()
	return nil
}

// floorServer answers every Check with an empty OK response (-grpc-floor).
type floorServer struct {
	authv3.UnimplementedAuthorizationServer
}

func (floorServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}, nil
}
