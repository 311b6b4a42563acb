package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"google.golang.org/grpc"

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
// an in-process OIDC issuer) on 127.0.0.1, prints "addr token" on stdout for
// the load process, and serves until stdin closes.
func serve() error {
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
	tok, err := is.Token(testissuer.Claims{Subject: "alice", Audience: []string{"shop"}, Extra: map[string]any{"role": "r19"}})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	g := grpc.NewServer()
	s.Register(g)
	go func() { _ = g.Serve(lis) }()
	fmt.Printf("%s %s\n", lis.Addr(), tok)
	_, _ = os.Stdin.Read(make([]byte, 1)) // the parent closes stdin to stop us
	g.Stop()
	return nil
}
