package coordinator_test

// Regression tests for the failures the anchors (DTM, Seata) are known for.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
)

// A participant that answers 200 with an error text has not confirmed.
func TestTwoHundredWithFailureIsNotSuccess(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		c, _ := start(t, s, nil)
		ctx := context.Background()
		failure := newParticipant(t, func(call, int) (int, string) {
			return http.StatusOK, `{"dtm_result":"FAILURE","message":"insufficient funds"}`
		})
		errText := newParticipant(t, func(_ call, n int) (int, string) {
			if n < 2 {
				return http.StatusOK, `{"error":"db locked"}`
			}
			return http.StatusOK, `{"status":"SUCCESS"}`
		})
		tx, _ := c.Begin(ctx, coordinator.BeginRequest{ID: "f200", Branches: []store.Branch{failure.branch("a")}})
		got, _ := c.Commit(ctx, tx.ID, 30*time.Second)
		if got.State != store.Stuck || got.Branches[0].State != store.BranchFailed {
			t.Fatalf("FAILURE body taken as success: %+v", got)
		}
		tx, _ = c.Begin(ctx, coordinator.BeginRequest{ID: "e200", Branches: []store.Branch{errText.branch("a")}})
		got, _ = c.Commit(ctx, tx.ID, 30*time.Second)
		if got.State != store.Committed || got.Branches[0].Attempts != 3 {
			t.Fatalf("error body: want two retries then success, got %+v", got)
		}
	})
}

func TestClassify(t *testing.T) {
	cases := []struct {
		code int
		body string
		want coordinator.Result
	}{
		{200, ``, coordinator.Done}, {204, ``, coordinator.Done}, {200, `{"status":"SUCCESS"}`, coordinator.Done},
		{200, `{"status":"FAILURE"}`, coordinator.Failed}, {200, `{"dtm_result":"failure"}`, coordinator.Failed},
		{200, " FAILURE\n", coordinator.Failed}, {200, `ONGOING`, coordinator.Retry}, {200, `{"dtm_result":"ONGOING"}`, coordinator.Retry},
		{200, `{"error":"boom"}`, coordinator.Retry}, {200, `{"error":null}`, coordinator.Done}, {200, `not json {`, coordinator.Done},
		{409, ``, coordinator.Failed}, {425, ``, coordinator.Retry}, {500, ``, coordinator.Retry}, {404, ``, coordinator.Retry},
		{302, ``, coordinator.Retry},
	}
	for _, tc := range cases {
		if got := coordinator.Classify(tc.code, []byte(tc.body)); got.Result != tc.want {
			t.Errorf("%d %q: %v, want %v", tc.code, tc.body, got.Result, tc.want)
		}
	}
}

// A confirm that fails forever is retried a bounded number of times, then the
// transaction is stuck, visible and alerted (log, metric, webhook); after the
// participant is fixed an operator's retry commits it.
func TestConfirmFailingForeverGetsStuckAndAlerted(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		var alerts []coordinator.Alert
		var mu sync.Mutex
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var a coordinator.Alert
			body, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(body, &a)
			mu.Lock()
			alerts = append(alerts, a)
			mu.Unlock()
		}))
		defer hook.Close()
		c, reg := start(t, s, func(o *coordinator.Options) { o.WebhookURL = hook.URL })
		var healthy atomic.Bool
		p := newParticipant(t, func(call, int) (int, string) {
			if healthy.Load() {
				return http.StatusOK, ""
			}
			return http.StatusInternalServerError, "disk full"
		})
		ctx := context.Background()
		tx, _ := c.Begin(ctx, coordinator.BeginRequest{ID: "forever", Branches: []store.Branch{p.branch("a")}})
		if _, err := c.Commit(ctx, tx.ID, 0); err != nil {
			t.Fatal(err)
		}
		got := eventually(t, c, tx.ID, func(x *store.Txn) bool { return x.State == store.Stuck })
		if got.Attempts != 4 || got.StuckPhase != store.Confirming || got.LastError == "" || p.phases("forever")["confirm"] != 4 {
			t.Fatalf("stuck %+v, calls %v", got, p.phases("forever"))
		}
		// The stuck state is committed before the webhook is sent: wait for it.
		for i := 0; metric(t, reg, "rosen_txn_alert_webhook_total", "") == 0; i++ {
			if i == 6000 { // a watchdog far beyond what delivery needs
				t.Fatal("webhook never called")
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		if len(alerts) != 1 || alerts[0].TxnID != "forever" || alerts[0].Event != "txn.stuck" {
			t.Fatalf("alerts %+v", alerts)
		}
		mu.Unlock()
		if metric(t, reg, "rosen_txn_stuck_total", "") != 1 {
			t.Fatal("stuck metric not counted")
		}
		// Stuck stays stuck (never dropped, never retried on its own) and listed.
		list, _ := c.List(ctx, store.Filter{State: store.Stuck})
		if len(list) != 1 {
			t.Fatalf("stuck list %v", list)
		}
		healthy.Store(true)
		got, err := c.Retry(ctx, tx.ID, 30*time.Second)
		if err != nil || got.State != store.Committed {
			t.Fatalf("retry: %v %+v", err, got)
		}
	})
}

// A manual confirm racing the timeout cancel has exactly one outcome: no
// branch ever sees both confirm and cancel.
func TestCommitRacingTimeoutHasOneOutcome(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		c, _ := start(t, s, func(o *coordinator.Options) { o.Poll = time.Millisecond })
		p := newParticipant(t, nil)
		ctx := context.Background()
		const n = 40
		var wg sync.WaitGroup
		for i := range n {
			id := fmt.Sprintf("race-%d", i)
			tx, err := c.Begin(ctx, coordinator.BeginRequest{ID: id, Timeout: 30 * time.Millisecond, Branches: []store.Branch{p.branch("a"), p.branch("b")}})
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				time.Sleep(time.Duration(i%6) * 10 * time.Millisecond) // some before, some at, some after the deadline
				_, _ = c.Commit(ctx, tx.ID, 0)
			})
		}
		wg.Wait()
		committed, aborted := 0, 0
		for i := range n {
			id := fmt.Sprintf("race-%d", i)
			got := eventually(t, c, id, func(x *store.Txn) bool { return x.State.Final() })
			ph := p.phases(id)
			if ph["confirm"] > 0 && ph["cancel"] > 0 {
				t.Fatalf("%s both confirmed and cancelled: %v", id, ph)
			}
			if got.State == store.Committed {
				committed++
				if ph["confirm"] != 2 {
					t.Fatalf("%s committed with calls %v", id, ph)
				}
			} else {
				aborted++
				if ph["cancel"] != 2 {
					t.Fatalf("%s aborted with calls %v", id, ph)
				}
			}
		}
		t.Logf("committed %d, aborted %d", committed, aborted)
	})
}

// flakyStore fails SaveProgress while broken is set: the store went away during phase two.
type flakyStore struct {
	store.Store
	broken atomic.Bool
}

func (f *flakyStore) SaveProgress(ctx context.Context, id string, p store.Progress) error {
	if f.broken.Load() {
		return errors.New("connection refused")
	}
	return f.Store.SaveProgress(ctx, id, p)
}

func (f *flakyStore) ClaimDue(ctx context.Context, owner string, now, until time.Time, limit int) ([]string, error) {
	if f.broken.Load() {
		return nil, errors.New("connection refused")
	}
	return f.Store.ClaimDue(ctx, owner, now, until, limit)
}

// The store failing during phase two loses nothing: the lease runs out and
// the round runs again once the store is back.
func TestStoreFailingDuringPhaseTwoRecovers(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		fs := &flakyStore{Store: s}
		c, reg := start(t, fs, func(o *coordinator.Options) { o.Lease = 200 * time.Millisecond })
		var calls atomic.Int32
		p := newParticipant(t, func(call, int) (int, string) {
			if calls.Add(1) == 1 {
				fs.broken.Store(true) // the store dies while the first confirm is in flight
			}
			return http.StatusOK, ""
		})
		ctx := context.Background()
		tx, _ := c.Begin(ctx, coordinator.BeginRequest{ID: "sf", Branches: []store.Branch{p.branch("a")}})
		got, err := c.Commit(ctx, tx.ID, 0)
		if err != nil || got.State != store.Confirming {
			t.Fatalf("commit: %v %+v", err, got)
		}
		for calls.Load() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		for metric(t, reg, "rosen_txn_store_errors_total", "") == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		if got, _ := s.Get(ctx, tx.ID); got.State != store.Confirming {
			t.Fatalf("state while the store is down: %+v", got)
		}
		fs.broken.Store(false)
		got = eventually(t, c, tx.ID, func(x *store.Txn) bool { return x.State == store.Committed })
		if p.phases("sf")["confirm"] < 2 {
			t.Fatalf("confirm not re-run after recovery: %v", p.phases("sf"))
		}
		_ = got
	})
}

// A participant that hangs is cut off at CallTimeout and retried; the
// transaction ends stuck, not blocked.
func TestHangingParticipantIsBounded(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		release := make(chan struct{})
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer hang.Close()
		defer close(release)
		c, _ := start(t, s, func(o *coordinator.Options) {
			o.CallTimeout = 50 * time.Millisecond
			o.DefaultPolicy = store.Policy{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond, Limit: 2}
		})
		ctx := context.Background()
		tx, _ := c.Begin(ctx, coordinator.BeginRequest{ID: "hang", Branches: []store.Branch{{ID: "h",
			Confirm: store.Action{URL: hang.URL}, Cancel: store.Action{URL: hang.URL}}}})
		_, _ = c.Commit(ctx, tx.ID, 0)
		got := eventually(t, c, tx.ID, func(x *store.Txn) bool { return x.State == store.Stuck })
		if got.Attempts != 2 {
			t.Fatalf("%+v", got)
		}
	})
}
