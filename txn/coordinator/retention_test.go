package coordinator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
)

// Committed and aborted transactions go once the retention period has passed;
// stuck and active ones stay.
func TestRetentionDeletesFinishedTransactions(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		ok := newParticipant(t, nil)
		broken := newParticipant(t, func(call, int) (int, string) { return 409, "no" })
		c, reg := start(t, s, func(o *coordinator.Options) {
			o.Retention, o.PurgeEvery = time.Second, 20*time.Millisecond
		})
		ctx := context.Background()
		begin := func(id string, p *participant) {
			t.Helper()
			if _, err := c.Begin(ctx, coordinator.BeginRequest{ID: id, Branches: []store.Branch{p.branch("b")}}); err != nil {
				t.Fatal(err)
			}
		}
		begin("done", ok)
		begin("gone", ok)
		begin("stuck", broken)
		begin("open", ok)
		if got, err := c.Commit(ctx, "done", 10*time.Second); err != nil || got.State != store.Committed {
			t.Fatalf("commit: %v %+v", err, got)
		}
		if got, err := c.Abort(ctx, "gone", "", 10*time.Second); err != nil || got.State != store.Aborted {
			t.Fatalf("abort: %v %+v", err, got)
		}
		if got, err := c.Commit(ctx, "stuck", 10*time.Second); err != nil || got.State != store.Stuck {
			t.Fatalf("stuck: %v %+v", err, got)
		}
		// Still there within the retention period.
		if _, err := c.Get(ctx, "done"); err != nil {
			t.Fatalf("purged too early: %v", err)
		}
		for _, id := range []string{"done", "gone"} {
			for range 500 {
				if _, err := c.Get(ctx, id); errors.Is(err, store.ErrNotFound) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if _, err := c.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s kept past retention: %v", id, err)
			}
		}
		for _, id := range []string{"stuck", "open"} {
			if _, err := c.Get(ctx, id); err != nil {
				t.Fatalf("%s purged: %v", id, err)
			}
		}
		waitMetric(t, reg, "rosen_txn_purged_total", "", 2)
	})
}

// A negative retention keeps finished transactions for ever.
func TestRetentionNegativeKeepsEverything(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		ok := newParticipant(t, nil)
		c, _ := start(t, s, func(o *coordinator.Options) { o.Retention, o.PurgeEvery = -1, 10*time.Millisecond })
		ctx := context.Background()
		if _, err := c.Begin(ctx, coordinator.BeginRequest{ID: "kept", Branches: []store.Branch{ok.branch("b")}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Commit(ctx, "kept", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if n := c.Purge(ctx); n != 0 {
			t.Fatalf("purged %d with retention off", n)
		}
		if _, err := c.Get(ctx, "kept"); err != nil {
			t.Fatal(err)
		}
	})
}
