package grpcapi_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/grpcapi"
	"github.com/rosenmesh/rosen/txn/store"
	"github.com/rosenmesh/rosen/txn/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestGRPCLifecycle(t *testing.T) {
	s, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "txn.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := coordinator.New(coordinator.Options{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	part := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer part.Close()
	srv := grpc.NewServer()
	grpcapi.Register(srv, c)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := context.Background()

	var v wire.TxnView
	if err := grpcapi.Call(ctx, cc, "Begin", map[string]any{"id": "g1", "timeout": "30s"}, &v); err != nil || v.State != "trying" {
		t.Fatalf("begin %v %+v", err, v)
	}
	var reg map[string]string
	if err := grpcapi.Call(ctx, cc, "Register", map[string]any{"txn_id": "g1", "branch_id": "b", "confirm": part.URL, "cancel": part.URL,
		"payload": map[string]any{"n": 1}}, &reg); err != nil {
		t.Fatal(err)
	}
	if err := grpcapi.Call(ctx, cc, "Commit", map[string]any{"id": "g1", "wait": "30s"}, &v); err != nil || v.State != "committed" {
		t.Fatalf("commit %v %+v", err, v)
	}
	var list struct{ Transactions []wire.TxnView }
	if err := grpcapi.Call(ctx, cc, "List", map[string]any{"state": "committed"}, &list); err != nil || len(list.Transactions) != 1 {
		t.Fatalf("list %v %+v", err, list)
	}
	for _, tc := range []struct {
		method string
		req    map[string]any
		want   codes.Code
	}{
		{"Get", map[string]any{"id": "nope"}, codes.NotFound},
		{"Begin", map[string]any{"id": "g1"}, codes.AlreadyExists},
		{"Begin", map[string]any{"timeout": "eventually"}, codes.InvalidArgument},
		{"Abort", map[string]any{"id": "g1"}, codes.FailedPrecondition},
		{"Commit", map[string]any{"id": "g1", "wait": "1h"}, codes.InvalidArgument},
	} {
		err := grpcapi.Call(ctx, cc, tc.method, tc.req, &v)
		if status.Code(err) != tc.want {
			t.Errorf("%s %v: %v, want %v", tc.method, tc.req, err, tc.want)
		}
	}
}
