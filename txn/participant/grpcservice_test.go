package participant_test

import (
	"context"
	"database/sql"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/rosenmesh/rosen/txn/barrier"
	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/participant"
	"github.com/rosenmesh/rosen/txn/store"
)

// A participant served with RegisterGRPC, driven by a real coordinator over
// gRPC: a tried branch is confirmed, an untried one is cancelled as an empty
// compensation, and a Confirm without Try is failed for good (stuck).
func TestGRPCServiceBehindTheBarrier(t *testing.T) {
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
	var confirmed, cancelled atomic.Int32
	svc := &participant.Service{Barrier: b,
		Try: func(context.Context, *sql.Tx, participant.Call) error { return nil },
		Confirm: func(_ context.Context, _ *sql.Tx, c participant.Call) error {
			if string(c.Payload) != `{"amount":5}` {
				t.Errorf("payload %s", c.Payload)
			}
			confirmed.Add(1)
			return nil
		},
		Cancel: func(context.Context, *sql.Tx, participant.Call) error {
			cancelled.Add(1) // never here: the only cancel is an empty compensation
			return nil
		},
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	participant.RegisterGRPC(srv, "bank.v1.Ledger", svc)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	endpoint := "grpc://" + lis.Addr().String() + "/bank.v1.Ledger/"

	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "txn.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	co, err := coordinator.New(coordinator.Options{Store: st, Log: zaptest.NewLogger(t), Poll: 10 * time.Millisecond,
		DefaultPolicy: store.Policy{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond, Limit: 2}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = co.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	branch := store.Branch{ID: "b",
		Confirm: store.Action{URL: endpoint + "Confirm", Body: []byte(`{"amount":5}`)},
		Cancel:  store.Action{URL: endpoint + "Cancel", Body: []byte(`{"amount":5}`)}}
	begin := func(id string) {
		if _, err := co.Begin(ctx, coordinator.BeginRequest{ID: id, Branches: []store.Branch{branch}}); err != nil {
			t.Fatal(err)
		}
	}
	// The caller's Try, over gRPC with the protocol metadata.
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	try := func(id, phase string) error {
		md := metadata.Pairs("rosen-txn-id", id, "rosen-branch-id", "b", "rosen-txn-phase", phase)
		return cc.Invoke(metadata.NewOutgoingContext(ctx, md), "/bank.v1.Ledger/Try", &structpb.Struct{}, &structpb.Struct{})
	}
	if err := try("t-ok", "cancel"); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("phase mismatch: %v", err)
	}
	begin("t-ok")
	if err := try("t-ok", "try"); err != nil {
		t.Fatal(err)
	}
	if got, err := co.Commit(ctx, "t-ok", 30*time.Second); err != nil || got.State != store.Committed {
		t.Fatalf("commit %v %+v", err, got)
	}
	begin("t-untried")
	if got, err := co.Abort(ctx, "t-untried", "test", 30*time.Second); err != nil || got.State != store.Aborted {
		t.Fatalf("abort %v %+v", err, got)
	}
	if err := try("t-untried", "try"); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("hanging try: %v", err)
	}
	begin("t-no-try")
	if got, err := co.Commit(ctx, "t-no-try", 30*time.Second); err != nil || got.State != store.Stuck || got.Attempts != 1 {
		t.Fatalf("confirm without try: %v %+v", err, got)
	}
	if confirmed.Load() != 1 || cancelled.Load() != 0 {
		t.Fatalf("confirmed %d cancelled %d", confirmed.Load(), cancelled.Load())
	}
}
