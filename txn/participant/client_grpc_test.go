package participant_test

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/rosenmesh/rosen/txn/barrier"
	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/participant"
	"github.com/rosenmesh/rosen/txn/rest"
	"github.com/rosenmesh/rosen/txn/store"
)

// The SDK calls a gRPC participant's Try with the protocol metadata (as the
// HTTP Try sends headers), through a real coordinator (REST) and a real gRPC
// server behind the barrier: a good Try is then confirmed over gRPC, a refused
// Try makes Run abort (and the Cancel is an empty compensation).
func TestClientTriesOverGRPCWithMetadata(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "p.db")+"?_pragma=busy_timeout(5000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b, err := barrier.New(ctx, db, barrier.SQLite, "")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var confirmed, cancelled, tried []string
	svc := &participant.Service{Barrier: b,
		Try: func(_ context.Context, _ *sql.Tx, c participant.Call) error {
			mu.Lock()
			defer mu.Unlock()
			tried = append(tried, c.Branch.TxnID+"/"+c.Branch.BranchID+" "+string(c.Payload))
			if strings.Contains(string(c.Payload), "9999") {
				return participant.ErrRefused
			}
			return nil
		},
		Confirm: func(_ context.Context, _ *sql.Tx, c participant.Call) error {
			mu.Lock()
			defer mu.Unlock()
			confirmed = append(confirmed, c.Branch.TxnID)
			return nil
		},
		Cancel: func(_ context.Context, _ *sql.Tx, c participant.Call) error {
			mu.Lock()
			defer mu.Unlock()
			cancelled = append(cancelled, c.Branch.TxnID)
			return nil
		},
	}
	// What the participant's server saw on each Try.
	var seen []metadata.MD
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if strings.HasSuffix(info.FullMethod, "/Try") {
			md, _ := metadata.FromIncomingContext(ctx)
			mu.Lock()
			seen = append(seen, md)
			mu.Unlock()
		}
		return h(ctx, req)
	}))
	participant.RegisterGRPC(srv, "bank.v1.Ledger", svc)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	endpoint := "grpc://" + lis.Addr().String() + "/bank.v1.Ledger/"

	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "txn.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	co, err := coordinator.New(coordinator.Options{Store: st, Log: zaptest.NewLogger(t), Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = co.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	api := httptest.NewServer(rest.New(co, nil))
	defer api.Close()

	cl := participant.NewClient(api.URL)
	defer cl.Close()
	branch := func(amount int) participant.Branch {
		return participant.Branch{ID: "debit", Try: endpoint + "Try", Confirm: endpoint + "Confirm", Cancel: endpoint + "Cancel",
			Payload: map[string]int{"amount": amount}}
	}
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	var id string
	state, err := cl.Run(participant.WithTraceparent(ctx, tp), participant.Options{ID: "g-ok"}, 30*time.Second,
		func(ctx context.Context, g *participant.Global) error {
			id = g.ID
			return g.Try(ctx, branch(5))
		})
	if err != nil || state != "committed" {
		t.Fatalf("run: %q %v", state, err)
	}
	state, err = cl.Run(ctx, participant.Options{ID: "g-refused"}, 30*time.Second, func(ctx context.Context, g *participant.Global) error {
		return g.Try(ctx, branch(9999))
	})
	if !errors.Is(err, participant.ErrTryFailed) || !strings.Contains(err.Error(), "FailedPrecondition") || state != "aborted" {
		t.Fatalf("refused try: %q %v", state, err)
	}
	// A malformed gRPC endpoint is a clear Try failure, not a call.
	g, err := cl.Begin(ctx, participant.Options{ID: "g-bad"})
	if err != nil {
		t.Fatal(err)
	}
	bad := branch(1)
	bad.Try = "grpc://" + lis.Addr().String() + "/no-service"
	if err := g.Try(ctx, bad); !errors.Is(err, participant.ErrTryFailed) || !strings.Contains(err.Error(), "package.Service/Method") {
		t.Fatalf("bad endpoint: %v", err)
	}
	if _, err := g.Abort(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("%d gRPC Try calls, want 2", len(seen))
	}
	first := func(md metadata.MD, k string) string {
		if v := md.Get(k); len(v) == 1 {
			return v[0]
		}
		return ""
	}
	md := seen[0]
	if first(md, "rosen-txn-id") != id || first(md, "rosen-branch-id") != "debit" || first(md, "rosen-txn-phase") != "try" ||
		first(md, "twist-transaction-id") != id {
		t.Fatalf("try metadata %v", md)
	}
	// The caller's trace continues (same trace id, a span of its own).
	if got := first(md, "traceparent"); len(got) != 55 || got[3:35] != tp[3:35] {
		t.Fatalf("traceparent %q, want trace %s", got, tp[3:35])
	}
	if first(seen[1], "rosen-txn-id") != "g-refused" || first(seen[1], "traceparent") == "" {
		t.Fatalf("second try metadata %v", seen[1])
	}
	if len(tried) != 2 || tried[0] != "g-ok/debit {\"amount\":5}" {
		t.Fatalf("tried %v", tried)
	}
	if len(confirmed) != 1 || confirmed[0] != "g-ok" {
		t.Fatalf("confirmed %v", confirmed)
	}
	// The refused Try rolled back its business transaction: its cancel runs
	// (TryStarted) and g-bad's is an empty compensation, skipped by the barrier.
	if len(cancelled) != 1 || cancelled[0] != "g-refused" {
		t.Fatalf("cancelled %v", cancelled)
	}
}
