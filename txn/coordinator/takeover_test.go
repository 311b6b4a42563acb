package coordinator_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
)

// Replica A takes a commit and dies while its confirm is in flight (nothing
// recorded, its lease left behind); replica B, on the same store, takes the
// transaction over once the lease has run out and confirms it. On every store.
func TestReplicaTakesOverAfterTheLeaseRunsOut(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		var calls atomic.Int32
		arrived := make(chan struct{})
		p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				close(arrived)
				<-r.Context().Done() // A's call: hangs until A dies
				return
			}
			_, _ = w.Write([]byte(`{"status":"SUCCESS"}`))
		}))
		defer p.Close()
		newReplica := func(owner string) (*coordinator.Coordinator, context.CancelFunc, chan struct{}) {
			c, err := coordinator.New(coordinator.Options{Store: s, Log: zaptest.NewLogger(t), Owner: owner,
				Lease: time.Second, Poll: 20 * time.Millisecond, CallTimeout: 10 * time.Second,
				DefaultPolicy: store.Policy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Limit: 4}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = c.Run(ctx); close(done) }()
			return c, cancel, done
		}
		a, killA, aDone := newReplica("replica-a")
		b, stopB, bDone := newReplica("replica-b")
		defer func() { stopB(); <-bDone }()
		ctx := context.Background()
		br := store.Branch{ID: "b", Confirm: store.Action{URL: p.URL + "/confirm"}, Cancel: store.Action{URL: p.URL + "/cancel"}}
		if _, err := a.Begin(ctx, coordinator.BeginRequest{ID: "handover", Branches: []store.Branch{br}}); err != nil {
			t.Fatal(err)
		}
		if got, err := a.Commit(ctx, "handover", 0); err != nil || got.State != store.Confirming || got.Owner != "replica-a" {
			t.Fatalf("commit on A: %v %+v", err, got)
		}
		<-arrived
		killA()
		<-aDone
		if got, _ := b.Get(ctx, "handover"); got.State != store.Confirming || got.Owner != "replica-a" {
			t.Fatalf("after A died: %+v", got)
		}
		got := eventually(t, b, "handover", func(tx *store.Txn) bool { return tx.State == store.Committed })
		if got.Branches[0].State != store.BranchConfirmed || got.Owner != "" || calls.Load() != 2 {
			t.Fatalf("after takeover: %+v, %d calls", got, calls.Load())
		}
		if got.FinishedAt.Before(got.CreatedAt.Add(time.Second)) {
			t.Fatalf("finished %s, before A's lease ran out (created %s)", got.FinishedAt, got.CreatedAt)
		}
	})
}
