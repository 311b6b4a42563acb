package coordinator_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
)

// grpcCall is one call a gRPC participant received.
type grpcCall struct {
	Method string
	MD     metadata.MD
	In     map[string]any
}

// grpcParticipant is a real gRPC server on 127.0.0.1:0 answering any method
// as a test scripts it.
type grpcParticipant struct {
	addr   string
	mu     sync.Mutex
	calls  []grpcCall
	answer func(c grpcCall, ctx context.Context) (*structpb.Struct, error)
}

func newGRPCParticipant(t *testing.T, answer func(c grpcCall, ctx context.Context) (*structpb.Struct, error)) *grpcParticipant {
	t.Helper()
	p := &grpcParticipant{answer: answer}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = lis.Addr().String()
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		in := &structpb.Struct{}
		if err := stream.RecvMsg(in); err != nil {
			return err
		}
		method, _ := grpc.MethodFromServerStream(stream)
		md, _ := metadata.FromIncomingContext(stream.Context())
		c := grpcCall{Method: method, MD: md, In: in.AsMap()}
		p.mu.Lock()
		p.calls = append(p.calls, c)
		p.mu.Unlock()
		out, err := structpb.NewStruct(map[string]any{"status": "SUCCESS"})
		if err != nil {
			return err
		}
		if p.answer != nil {
			if out, err = p.answer(c, stream.Context()); err != nil {
				return err
			}
		}
		return stream.SendMsg(out)
	}))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return p
}

func (p *grpcParticipant) branch(id string) store.Branch {
	return store.Branch{ID: id,
		Confirm: store.Action{URL: "grpc://" + p.addr + "/bank.v1.Ledger/Confirm", Body: []byte(`{"amount":5}`)},
		Cancel:  store.Action{URL: "grpc://" + p.addr + "/bank.v1.Ledger/Cancel", Body: []byte(`{"amount":5}`)}}
}

func (p *grpcParticipant) received() []grpcCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]grpcCall(nil), p.calls...)
}

func mdValue(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) == 1 {
		return v[0]
	}
	return ""
}

// Confirm and cancel reach the gRPC method with the payload as a Struct and
// the protocol headers as metadata.
func TestGRPCConfirmAndCancelCarryMetadata(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		p := newGRPCParticipant(t, nil)
		c, _ := start(t, s, nil)
		ctx := context.Background()
		for _, tc := range []struct{ id, phase, method string }{
			{"g-commit", coordinator.PhaseConfirm, "/bank.v1.Ledger/Confirm"},
			{"g-abort", coordinator.PhaseCancel, "/bank.v1.Ledger/Cancel"},
		} {
			tx, err := c.Begin(ctx, coordinator.BeginRequest{ID: tc.id, Headers: map[string]string{"X-Tenant": "acme", "X-Bad!": "skipped"},
				Branches: []store.Branch{p.branch("b1")}})
			if err != nil {
				t.Fatal(err)
			}
			want := store.Committed
			if tc.phase == coordinator.PhaseConfirm {
				_, err = c.Commit(ctx, tx.ID, 0)
			} else {
				_, err = c.Abort(ctx, tx.ID, "test", 0)
				want = store.Aborted
			}
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, c, tx.ID, func(x *store.Txn) bool { return x.State == want })
		}
		calls := p.received()
		if len(calls) != 2 {
			t.Fatalf("calls: %+v", calls)
		}
		for i, tc := range []struct{ id, phase, method string }{
			{"g-commit", coordinator.PhaseConfirm, "/bank.v1.Ledger/Confirm"},
			{"g-abort", coordinator.PhaseCancel, "/bank.v1.Ledger/Cancel"},
		} {
			got := calls[i]
			if got.Method != tc.method || mdValue(got.MD, "rosen-txn-id") != tc.id || mdValue(got.MD, "rosen-branch-id") != "b1" ||
				mdValue(got.MD, "rosen-txn-phase") != tc.phase || mdValue(got.MD, "twist-transaction-id") != tc.id ||
				mdValue(got.MD, "x-tenant") != "acme" || len(mdValue(got.MD, "traceparent")) != 55 {
				t.Fatalf("call %d: %+v", i, got)
			}
			if got.In["amount"] != 5.0 {
				t.Fatalf("payload: %+v", got.In)
			}
		}
	})
}

// Each answer maps as docs/txn.md documents.
func TestGRPCStatusMapping(t *testing.T) {
	type answer struct {
		code codes.Code
		out  map[string]any
	}
	cases := []struct {
		name string
		a    answer
		want coordinator.Result
	}{
		{"ok", answer{codes.OK, map[string]any{"status": "SUCCESS"}}, coordinator.Done},
		{"ok-empty", answer{codes.OK, nil}, coordinator.Done},
		{"ok-failure", answer{codes.OK, map[string]any{"status": "FAILURE"}}, coordinator.Failed},
		{"ok-dtm-failure", answer{codes.OK, map[string]any{"dtm_result": "failure"}}, coordinator.Failed},
		{"ok-ongoing", answer{codes.OK, map[string]any{"status": "ONGOING"}}, coordinator.Retry},
		{"ok-error", answer{codes.OK, map[string]any{"error": "disk full"}}, coordinator.Retry},
		{"failed-precondition", answer{codes.FailedPrecondition, nil}, coordinator.Failed},
		{"aborted", answer{codes.Aborted, nil}, coordinator.Retry},
		{"unavailable", answer{codes.Unavailable, nil}, coordinator.Retry},
		{"resource-exhausted", answer{codes.ResourceExhausted, nil}, coordinator.Retry},
		{"deadline-exceeded", answer{codes.DeadlineExceeded, nil}, coordinator.Retry},
		{"invalid-argument", answer{codes.InvalidArgument, nil}, coordinator.Retry},
		{"unimplemented", answer{codes.Unimplemented, nil}, coordinator.Retry},
		{"internal", answer{codes.Internal, nil}, coordinator.Retry},
	}
	byName := map[string]answer{}
	for _, tc := range cases {
		byName[tc.name] = tc.a
	}
	p := newGRPCParticipant(t, func(c grpcCall, _ context.Context) (*structpb.Struct, error) {
		a := byName[mdValue(c.MD, "rosen-branch-id")]
		if a.code != codes.OK {
			return nil, status.Error(a.code, "scripted")
		}
		return structpb.NewStruct(a.out)
	})
	caller := coordinator.NewGRPCCaller(5 * time.Second)
	defer caller.Close()
	txn := &store.Txn{ID: "map"}
	for _, tc := range cases {
		b := p.branch(tc.name)
		if got := caller.Call(context.Background(), txn, &b, coordinator.PhaseConfirm); got.Result != tc.want {
			t.Errorf("%s: %v (%s), want %v", tc.name, got.Result, got.Detail, tc.want)
		}
	}
	if caller.Conns() != 1 {
		t.Fatalf("one target, %d connections", caller.Conns())
	}
	// Nobody listening: retried, not failed.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := lis.Addr().String()
	_ = lis.Close()
	b := store.Branch{ID: "gone", Confirm: store.Action{URL: "grpc://" + gone + "/bank.v1.Ledger/Confirm"}}
	if got := caller.Call(context.Background(), txn, &b, coordinator.PhaseConfirm); got.Result != coordinator.Retry {
		t.Fatalf("unreachable: %+v", got)
	}
}

// The connection cache stays within MaxConns and keeps working past it.
func TestGRPCConnectionCacheIsBounded(t *testing.T) {
	a, b := newGRPCParticipant(t, nil), newGRPCParticipant(t, nil)
	caller := coordinator.NewGRPCCaller(5 * time.Second)
	caller.MaxConns = 1
	defer caller.Close()
	txn := &store.Txn{ID: "cache"}
	for range 2 {
		for _, p := range []*grpcParticipant{a, b} {
			br := p.branch("x")
			if got := caller.Call(context.Background(), txn, &br, coordinator.PhaseConfirm); got.Result != coordinator.Done {
				t.Fatalf("%+v", got)
			}
			if caller.Conns() != 1 {
				t.Fatalf("%d connections", caller.Conns())
			}
		}
	}
	if len(a.received()) != 2 || len(b.received()) != 2 {
		t.Fatalf("a %d, b %d", len(a.received()), len(b.received()))
	}
}

// A gRPC participant that hangs is cut off at CallTimeout; one that keeps
// answering UNAVAILABLE is retried up to the limit. Both end stuck.
func TestGRPCParticipantRetriedThenStuck(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		p := newGRPCParticipant(t, func(c grpcCall, ctx context.Context) (*structpb.Struct, error) {
			if mdValue(c.MD, "rosen-branch-id") == "hang" {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return nil, status.Error(codes.Unavailable, "down for maintenance")
		})
		c, reg := start(t, s, func(o *coordinator.Options) {
			o.CallTimeout = 50 * time.Millisecond
			o.DefaultPolicy = store.Policy{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond, Limit: 3}
		})
		ctx := context.Background()
		for _, id := range []string{"hang", "down"} {
			tx, err := c.Begin(ctx, coordinator.BeginRequest{ID: "g-" + id, Branches: []store.Branch{p.branch(id)}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Commit(ctx, tx.ID, 0); err != nil {
				t.Fatal(err)
			}
			got := eventually(t, c, tx.ID, func(x *store.Txn) bool { return x.State == store.Stuck })
			if got.Attempts != 3 || got.StuckPhase != store.Confirming {
				t.Fatalf("%s: %+v", id, got)
			}
			want := "participant answered Unavailable: down for maintenance"
			if id == "hang" {
				want = "no answer within 50ms"
			}
			if !strings.Contains(got.Branches[0].LastError, want) {
				t.Fatalf("%s: last error %q / %q", id, got.LastError, got.Branches[0].LastError)
			}
		}
		waitMetric(t, reg, "rosen_txn_stuck_total", "", 2)
	})
}

// One HTTP branch and one gRPC branch: the commit confirms both.
func TestMixedHTTPAndGRPCBranchesCommit(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		hp := newParticipant(t, nil)
		gp := newGRPCParticipant(t, nil)
		c, _ := start(t, s, nil)
		ctx := context.Background()
		tx, err := c.Begin(ctx, coordinator.BeginRequest{ID: "mixed"})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Register(ctx, tx.ID, hp.branch("http")); err != nil {
			t.Fatal(err)
		}
		gb := gp.branch("grpc")
		gb.Confirm.URL = "GRPC" + strings.TrimPrefix(gb.Confirm.URL, "grpc") // schemes are case-insensitive
		if err := c.Register(ctx, tx.ID, gb); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Commit(ctx, tx.ID, 0); err != nil {
			t.Fatal(err)
		}
		got := eventually(t, c, tx.ID, func(x *store.Txn) bool { return x.State == store.Committed })
		for _, b := range got.Branches {
			if b.State != store.BranchConfirmed {
				t.Fatalf("%+v", got.Branches)
			}
		}
		if hp.phases("mixed")["confirm"] != 1 || len(gp.received()) != 1 || mdValue(gp.received()[0].MD, "rosen-txn-phase") != "confirm" {
			t.Fatalf("http %v grpc %+v", hp.phases("mixed"), gp.received())
		}
	})
}

// Bad gRPC endpoints are refused at registration with a clear message.
func TestGRPCEndpointValidatedAtRegistration(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		c, _ := start(t, s, nil)
		ctx := context.Background()
		tx, err := c.Begin(ctx, coordinator.BeginRequest{ID: "bad-ep"})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ url, method, body, want string }{
			{"grpcs://127.0.0.1:1/a.B/C", "", "", "scheme must be grpc"},
			{"ftp://127.0.0.1:1/a.B/C", "", "", "absolute http(s) URL"},
			{"grpc:///a.B/C", "", "", "host:port"},
			{"grpc://127.0.0.1/a.B/C", "", "", "host:port"},
			{"grpc://127.0.0.1:0/a.B/C", "", "", "port must be"},
			{"grpc://127.0.0.1:1/a.B", "", "", "/package.Service/Method"},
			{"grpc://127.0.0.1:1/a.B/C/D", "", "", "/package.Service/Method"},
			{"grpc://127.0.0.1:1/a..B/C", "", "", "/package.Service/Method"},
			{"grpc://127.0.0.1:1/a.B/C?x=1", "", "", "no user, query"},
			{"grpc://127.0.0.1:1/a.B/C", "GET", "", "meaningless"},
			{"grpc://127.0.0.1:1/a.B/C", "", `[1,2]`, "JSON object"},
		} {
			b := store.Branch{ID: "b", Confirm: store.Action{URL: tc.url, Method: tc.method, Body: []byte(tc.body)}}
			err := c.Register(ctx, tx.ID, b)
			if !errors.Is(err, coordinator.ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s %s %s: %v, want %q", tc.url, tc.method, tc.body, err, tc.want)
			}
		}
		ok := store.Branch{ID: "b", Confirm: store.Action{URL: "grpc://localhost:9000/bank.v1.Ledger/Confirm", Method: "POST"}}
		if err := c.Register(ctx, tx.ID, ok); err != nil {
			t.Fatal(err)
		}
	})
}
