package integration

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"
)

// greeter answers UnaryCall and EmptyCall, so an allowed RPC succeeds.
type greeter struct {
	testgrpc.UnimplementedTestServiceServer
}

func (greeter) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Hostname: "greeter"}, nil
}

func (greeter) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, nil
}

// greeterPolicy: a DENY on header x-blocked=1 and an ALLOW of one method.
func greeterPolicy(allowed string) string {
	return fmt.Sprintf(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: greeter-deny
  namespace: default
spec:
  selector: {matchLabels: {app: greeter}}
  action: DENY
  rules:
  - when: [{key: "request.headers[x-blocked]", values: ["1"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: greeter-allow
  namespace: default
spec:
  selector: {matchLabels: {app: greeter}}
  rules:
  - to: [{operation: {paths: [%q], methods: [POST]}}]
`, allowed)
}

// TestProxylessServerRBAC: a real grpc-go xDS server (xds.NewGRPCServer,
// bootstrapped against a running rosen serve with Istio's server listener
// template and POD_PORTS) gets its inbound Listener with RBAC from Rosen: the
// allowed method succeeds, the other method and a request with the denied
// header get PermissionDenied, and changing the policy file moves the
// decision live.
func TestProxylessServerRBAC(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "policy.yaml"), greeterPolicy("/grpc.testing.TestService/UnaryCall"))
	r := startRosen(t, dir)

	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	bootstrap := fmt.Sprintf(`{
  "xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
  "node": {"id": "greeter-1", "locality": {}, "metadata": {"GENERATOR": "grpc", "NAMESPACE": "default",
    "LABELS": {"app": "greeter", "version": "v1"}, "POD_PORTS": "[{\"name\":\"grpc\",\"containerPort\":%d,\"protocol\":\"TCP\"}]"}},
  "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%%s"
}`, r.grpcAddr, port)
	serving := make(chan error, 16)
	srv, err := xds.NewGRPCServer(grpc.Creds(insecure.NewCredentials()),
		xds.BootstrapContentsForTesting([]byte(bootstrap)),
		xds.ServingModeCallback(func(addr net.Addr, args xds.ServingModeChangeArgs) {
			if args.Mode == connectivity.ServingModeServing {
				serving <- nil
			} else {
				serving <- fmt.Errorf("%s not serving: %v", addr, args.Err)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	testgrpc.RegisterTestServiceServer(srv, greeter{})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	select {
	case err := <-serving:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the xDS server did not get its inbound listener in 30s")
	}

	cc, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := testgrpc.NewTestServiceClient(cc)
	call := func(method string, md ...string) codes.Code {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, md...)
		if method == "UnaryCall" {
			_, err = client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		} else {
			_, err = client.EmptyCall(ctx, &testgrpc.Empty{})
		}
		return status.Code(err)
	}
	expect := func(want map[string]codes.Code) func() error {
		return func() error {
			for k, code := range want {
				var got codes.Code
				switch k {
				case "UnaryCall+blocked":
					got = call("UnaryCall", "x-blocked", "1")
				default:
					got = call(k)
				}
				if got != code {
					return fmt.Errorf("%s: %v, want %v", k, got, code)
				}
			}
			return nil
		}
	}
	if err := expect(map[string]codes.Code{
		"UnaryCall":         codes.OK,
		"EmptyCall":         codes.PermissionDenied,
		"UnaryCall+blocked": codes.PermissionDenied,
	})(); err != nil {
		t.Fatal(err)
	}

	// The policy now allows EmptyCall only: the server follows without a restart.
	writeFile(t, filepath.Join(dir, "policy.yaml"), greeterPolicy("/grpc.testing.TestService/EmptyCall"))
	eventually(t, 20*time.Second, expect(map[string]codes.Code{
		"UnaryCall": codes.PermissionDenied,
		"EmptyCall": codes.OK,
	}))
	if errs := r.configErrors(t); len(errs) > 0 {
		t.Fatalf("config errors: %v", errs)
	}

	// A condition grpc-go would NACK (a grpc-* header) is an error naming the
	// policy's field; the server keeps enforcing the last good policy.
	writeFile(t, filepath.Join(dir, "policy.yaml"), greeterPolicy("/grpc.testing.TestService/UnaryCall")+
		"  - when: [{key: \"request.headers[grpc-timeout]\", values: [\"1S\"]}]\n")
	eventually(t, 20*time.Second, func() error {
		msg := strings.Join(r.configErrors(t), "\n") + r.logs.String()
		if !strings.Contains(msg, "spec.rules[1].when[0].key") || !strings.Contains(msg, "grpc-timeout") {
			return fmt.Errorf("no error naming the grpc-timeout condition yet")
		}
		return nil
	})
	if err := expect(map[string]codes.Code{
		"UnaryCall": codes.PermissionDenied,
		"EmptyCall": codes.OK,
	})(); err != nil {
		t.Fatalf("after the rejected policy: %v", err)
	}
}
