package grpcapi_test

import (
	"context"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/grpcapi"
	"github.com/rosenmesh/rosen/txn/store"
	"github.com/rosenmesh/rosen/txn/wire"
)

// All gRPC: a branch registered through the gRPC API with grpc:// endpoints is
// confirmed over gRPC; a malformed endpoint is InvalidArgument.
func TestGRPCBranchThroughGRPCAPI(t *testing.T) {
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
	var confirms atomic.Int32
	// One server: the coordinator's API, and any other method as a participant.
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		if err := stream.RecvMsg(&structpb.Struct{}); err != nil {
			return err
		}
		if m, _ := grpc.MethodFromServerStream(stream); m == "/shop.Stock/Confirm" {
			confirms.Add(1)
		}
		out, _ := structpb.NewStruct(map[string]any{"status": "SUCCESS"})
		return stream.SendMsg(out)
	}))
	grpcapi.Register(srv, c)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := context.Background()
	var v wire.TxnView
	if err := grpcapi.Call(ctx, cc, "Begin", map[string]any{"id": "g2"}, &v); err != nil {
		t.Fatal(err)
	}
	var reg map[string]string
	bad := map[string]any{"txn_id": "g2", "branch_id": "b", "confirm": "grpc://" + ln.Addr().String() + "/Confirm"}
	if err := grpcapi.Call(ctx, cc, "Register", bad, &reg); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad endpoint: %v", err)
	}
	base := "grpc://" + ln.Addr().String() + "/shop.Stock/"
	if err := grpcapi.Call(ctx, cc, "Register", map[string]any{"txn_id": "g2", "branch_id": "b",
		"confirm": base + "Confirm", "cancel": base + "Cancel", "payload": map[string]any{"sku": "x"}}, &reg); err != nil {
		t.Fatal(err)
	}
	if err := grpcapi.Call(ctx, cc, "Commit", map[string]any{"id": "g2", "wait": "30s"}, &v); err != nil || v.State != "committed" {
		t.Fatalf("commit %v %+v", err, v)
	}
	if confirms.Load() != 1 {
		t.Fatalf("confirms %d", confirms.Load())
	}
}
