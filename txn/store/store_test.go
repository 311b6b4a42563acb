package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/rosenmesh/rosen/internal/testenv"
	"github.com/rosenmesh/rosen/txn/store"
)

func TestMain(m *testing.M) {
	// Every store stops its group-commit workers and pools on Close.
	goleak.VerifyTestMain(m)
}

// each runs one test body against SQLite and against the real PostgreSQL.
func each(t *testing.T, body func(t *testing.T, s store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "txn.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		body(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn, prefix := testenv.PostgresDSN(t), testenv.UniqueName("st")
		s, err := store.OpenPostgres(context.Background(), dsn, store.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(); dropTables(t, dsn, prefix+"_txn", prefix+"_txn_branch") })
		body(t, s)
	})
	t.Run("redis", func(t *testing.T) {
		addr, prefix := testenv.RedisAddr(t), testenv.UniqueName("st")
		s, err := store.OpenRedis(context.Background(), "redis://"+addr+"/0", store.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(); dropKeys(t, addr, prefix+":*") })
		body(t, s)
	})
}

// dropKeys removes a test's keys from the shared Redis.
func dropKeys(t *testing.T, addr, pattern string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		_ = rdb.Del(ctx, iter.Val()).Err()
	}
	if err := iter.Err(); err != nil {
		t.Logf("drop keys %s: %v", pattern, err)
	}
}

// dropTables removes a test's tables from the shared database.
func dropTables(t *testing.T, dsn string, tables ...string) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return
	}
	defer db.Close()
	for _, tb := range tables {
		if _, err := db.Exec(`DROP TABLE IF EXISTS ` + tb); err != nil {
			t.Logf("drop %s: %v", tb, err)
		}
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newTxn(id string) *store.Txn {
	return &store.Txn{
		ID: id, CreatedAt: t0, Deadline: t0.Add(time.Minute),
		Policy:  store.Policy{Initial: time.Second, Max: time.Minute, Limit: 5},
		Headers: map[string]string{"X-Tenant": "a"},
		Branches: []store.Branch{{ID: "b1",
			Confirm: store.Action{URL: "http://127.0.0.1:1/confirm", Body: []byte(`{"n":1}`)},
			Cancel:  store.Action{URL: "http://127.0.0.1:1/cancel"}}},
	}
}

func TestCreateGetAndReuse(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		if err := s.Create(ctx, newTxn("t1")); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.Trying || !got.Deadline.Equal(t0.Add(time.Minute)) || got.Headers["X-Tenant"] != "a" ||
			len(got.Branches) != 1 || string(got.Branches[0].Confirm.Body) != `{"n":1}` || got.Policy.Limit != 5 {
			t.Fatalf("got %+v", got)
		}
		if err := s.Create(ctx, newTxn("t1")); !errors.Is(err, store.ErrExists) {
			t.Fatalf("reused id: %v, want ErrExists", err)
		}
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
	})
}

func TestAddBranch(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		if err := s.Create(ctx, newTxn("t2")); err != nil {
			t.Fatal(err)
		}
		b := store.Branch{ID: "b2", Confirm: store.Action{URL: "http://x/c"}, Cancel: store.Action{URL: "http://x/k"}}
		if err := s.AddBranch(ctx, "t2", b, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.AddBranch(ctx, "t2", b, t0); err != nil {
			t.Fatalf("same registration again: %v", err)
		}
		b.Confirm.URL = "http://x/other"
		if err := s.AddBranch(ctx, "t2", b, t0); !errors.Is(err, store.ErrDuplicateBranch) {
			t.Fatalf("other actions: %v", err)
		}
		if err := s.AddBranch(ctx, "nope", b, t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown txn: %v", err)
		}
		if err := s.AddBranch(ctx, "t2", store.Branch{ID: "late"}, t0.Add(time.Hour)); !errors.Is(err, store.ErrTimedOut) {
			t.Fatalf("after deadline: %v", err)
		}
		if _, err := s.Transition(ctx, "t2", store.Transition{From: []store.State{store.Trying}, To: store.Cancelling, Now: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddBranch(ctx, "t2", store.Branch{ID: "b3"}, t0); !errors.Is(err, store.ErrState) {
			t.Fatalf("after abort: %v", err)
		}
		got, _ := s.Get(ctx, "t2")
		if len(got.Branches) != 2 || got.Branches[1].ID != "b2" {
			t.Fatalf("branches %+v", got.Branches)
		}
	})
}

// A commit racing the timeout abort: exactly one of them wins.
func TestTransitionRaceHasOneWinner(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for i := range 20 {
			id := "race" + string(rune('a'+i))
			if err := s.Create(ctx, newTxn(id)); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			results := make([]error, 2)
			for j, to := range []store.State{store.Confirming, store.Cancelling} {
				wg.Go(func() {
					_, results[j] = s.Transition(ctx, id, store.Transition{From: []store.State{store.Trying}, To: to, Now: t0})
				})
			}
			wg.Wait()
			if (results[0] == nil) == (results[1] == nil) {
				t.Fatalf("%s: both or neither won: %v / %v", id, results[0], results[1])
			}
		}
		_, err := s.Transition(ctx, "racea", store.Transition{From: []store.State{store.Trying}, To: store.Confirming, Now: t0})
		if !errors.Is(err, store.ErrState) {
			t.Fatalf("second commit: %v", err)
		}
	})
}

func TestDeadlineConditions(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_ = s.Create(ctx, newTxn("d1"))
		late := t0.Add(2 * time.Minute)
		_, err := s.Transition(ctx, "d1", store.Transition{From: []store.State{store.Trying}, To: store.Confirming, Now: late, BeforeDeadline: true})
		if !errors.Is(err, store.ErrTimedOut) {
			t.Fatalf("commit after deadline: %v", err)
		}
		if _, err := s.Transition(ctx, "d1", store.Transition{From: []store.State{store.Trying}, To: store.Cancelling, Now: t0, AfterDeadline: true}); !errors.Is(err, store.ErrState) {
			t.Fatalf("timeout abort before deadline: %v", err)
		}
		got, err := s.Transition(ctx, "d1", store.Transition{From: []store.State{store.Trying}, To: store.Cancelling, Now: late, AfterDeadline: true, Reason: "timeout"})
		if err != nil || got.Reason != "timeout" {
			t.Fatalf("timeout abort: %v %+v", err, got)
		}
	})
}

func TestClaimLeaseAndProgress(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for _, id := range []string{"c1", "c2", "c3"} {
			_ = s.Create(ctx, newTxn(id))
		}
		// c1 is committed by a client and due now; c2, c3 are not due before their deadline.
		if _, err := s.Transition(ctx, "c1", store.Transition{From: []store.State{store.Trying}, To: store.Confirming, Now: t0, NextDue: t0}); err != nil {
			t.Fatal(err)
		}
		now := t0.Add(time.Second)
		a, err := s.ClaimDue(ctx, "A", now, now.Add(10*time.Second), 10)
		if err != nil || len(a) != 1 || a[0] != "c1" {
			t.Fatalf("A claimed %v %v", a, err)
		}
		b, err := s.ClaimDue(ctx, "B", now, now.Add(10*time.Second), 10)
		if err != nil || len(b) != 0 {
			t.Fatalf("B claimed a leased txn: %v %v", b, err)
		}
		// After the lease runs out, B takes over; A's late write is refused.
		later := now.Add(11 * time.Second)
		b, _ = s.ClaimDue(ctx, "B", later, later.Add(10*time.Second), 10)
		if len(b) != 1 {
			t.Fatalf("B did not take over: %v", b)
		}
		err = s.SaveProgress(ctx, "c1", store.Progress{Owner: "A", From: store.Confirming, To: store.Committed, Now: later})
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("stale owner wrote: %v", err)
		}
		err = s.SaveProgress(ctx, "c1", store.Progress{Owner: "B", From: store.Confirming, To: store.Committed, Now: later,
			Branches: []store.Branch{{ID: "b1", State: store.BranchConfirmed, Attempts: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx, "c1")
		if got.State != store.Committed || got.Branches[0].State != store.BranchConfirmed || got.FinishedAt.IsZero() || got.Owner != "" {
			t.Fatalf("after save %+v", got)
		}
		// Past their deadline c2 and c3 become due (the coordinator aborts them).
		due, _ := s.ClaimDue(ctx, "A", t0.Add(time.Hour), t0.Add(time.Hour+time.Second), 10)
		if len(due) != 2 {
			t.Fatalf("expired txns not due: %v", due)
		}
		list, err := s.List(ctx, store.Filter{State: store.Committed})
		if err != nil || len(list) != 1 || list[0].ID != "c1" {
			t.Fatalf("list %v %v", list, err)
		}
	})
}

func TestStuckKeepsPhaseAndRetryResets(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_ = s.Create(ctx, newTxn("s1"))
		_, _ = s.Transition(ctx, "s1", store.Transition{From: []store.State{store.Trying}, To: store.Cancelling, Now: t0, Owner: "A", LeaseUntil: t0.Add(time.Minute)})
		if err := s.SaveProgress(ctx, "s1", store.Progress{Owner: "A", From: store.Cancelling, To: store.Stuck, Now: t0, Attempts: 5, LastError: "boom"}); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx, "s1")
		if got.State != store.Stuck || got.StuckPhase != store.Cancelling || got.LastError != "boom" {
			t.Fatalf("%+v", got)
		}
		got, err := s.Transition(ctx, "s1", store.Transition{From: []store.State{store.Stuck}, To: store.Cancelling, Now: t0, ResetAttempts: true})
		if err != nil || got.Attempts != 0 || got.State != store.Cancelling {
			t.Fatalf("retry: %v %+v", err, got)
		}
	})
}

func TestBadPrefix(t *testing.T) {
	if _, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "x.db"), store.Options{Prefix: "x; DROP"}); err == nil {
		t.Fatal("bad prefix accepted")
	}
}

// Concurrent writes share commits; a write that fails (a reused id, or a
// value PostgreSQL refuses, which rolls back its whole batch) fails alone and
// every other write of its batch is still committed.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for i := range 5 {
			if err := s.Create(ctx, newTxn(fmt.Sprintf("old%d", i))); err != nil {
				t.Fatal(err)
			}
		}
		const fresh = 60
		var wg sync.WaitGroup
		errs := make([]error, fresh)
		dup := make([]error, 5)
		bad := make([]error, 5)
		for i := range fresh {
			wg.Go(func() { errs[i] = s.Create(ctx, newTxn(fmt.Sprintf("new%d", i))) })
		}
		for i := range 5 {
			wg.Go(func() { dup[i] = s.Create(ctx, newTxn(fmt.Sprintf("old%d", i))) })
			wg.Go(func() {
				_, bad[i] = s.Transition(ctx, fmt.Sprintf("old%d", i), store.Transition{From: []store.State{store.Trying},
					To: store.Cancelling, Now: t0, Reason: "nul \x00 byte"})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("new%d: %v", i, err)
			}
			if got, err := s.Get(ctx, fmt.Sprintf("new%d", i)); err != nil || len(got.Branches) != 1 {
				t.Fatalf("new%d not committed: %v %+v", i, err, got)
			}
		}
		for i, err := range dup {
			if !errors.Is(err, store.ErrExists) {
				t.Fatalf("old%d created twice: %v", i, err)
			}
		}
		for i, err := range bad {
			got, gerr := s.Get(ctx, fmt.Sprintf("old%d", i))
			if gerr != nil {
				t.Fatal(gerr)
			}
			// PostgreSQL refuses a NUL in text, SQLite stores it: either way the state matches the answer.
			if (err == nil) != (got.State == store.Cancelling) {
				t.Fatalf("old%d: answer %v but state %s", i, err, got.State)
			}
		}
	})
}

// Retention: final transactions that finished before the cutoff go, with
// their branches; newer, active and stuck ones stay.
func TestPurge(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		end := func(id string, to store.State, at time.Time) {
			t.Helper()
			if err := s.Create(ctx, newTxn(id)); err != nil {
				t.Fatal(err)
			}
			from := store.Confirming
			if to == store.Aborted {
				from = store.Cancelling
			}
			if _, err := s.Transition(ctx, id, store.Transition{From: []store.State{store.Trying}, To: from, Now: at, Owner: "A", LeaseUntil: at.Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
			if to == from {
				return
			}
			if err := s.SaveProgress(ctx, id, store.Progress{Owner: "A", From: from, To: to, Now: at,
				Branches: []store.Branch{{ID: "b1", State: store.BranchConfirmed, Attempts: 1}}}); err != nil {
				t.Fatal(err)
			}
		}
		end("old-c", store.Committed, t0)
		end("old-a", store.Aborted, t0.Add(time.Second))
		end("old-stuck", store.Stuck, t0)
		end("old-active", store.Confirming, t0)
		end("new-c", store.Committed, t0.Add(time.Hour))
		_ = s.Create(ctx, newTxn("trying"))
		n, err := s.Purge(ctx, t0.Add(time.Minute), 1)
		if err != nil || n != 1 {
			t.Fatalf("first purge: %d %v", n, err)
		}
		n, err = s.Purge(ctx, t0.Add(time.Minute), 100)
		if err != nil || n != 1 {
			t.Fatalf("second purge: %d %v", n, err)
		}
		for _, id := range []string{"old-c", "old-a"} {
			if _, err := s.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s kept: %v", id, err)
			}
		}
		for _, id := range []string{"old-stuck", "old-active", "new-c", "trying"} {
			if _, err := s.Get(ctx, id); err != nil {
				t.Fatalf("%s purged: %v", id, err)
			}
		}
		list, _ := s.List(ctx, store.Filter{State: store.Committed})
		if len(list) != 1 || list[0].ID != "new-c" {
			t.Fatalf("committed list after purge: %+v", list)
		}
		if n, err := s.Purge(ctx, t0.Add(time.Minute), 100); err != nil || n != 0 {
			t.Fatalf("nothing left to purge: %d %v", n, err)
		}
		// A purged id may be used again (it is a new transaction).
		if err := s.Create(ctx, newTxn("old-c")); err != nil {
			t.Fatalf("reuse after purge: %v", err)
		}
	})
}

// A database that is not there: a clear error at open, nothing left running.
func TestUnreachableDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := store.OpenPostgres(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", store.Options{}); err == nil ||
		!strings.Contains(err.Error(), "connect postgres") {
		t.Fatalf("postgres: %v", err)
	}
	if _, err := store.OpenRedis(ctx, "redis://127.0.0.1:1/0", store.Options{}); err == nil || !strings.Contains(err.Error(), "connect redis") {
		t.Fatalf("redis: %v", err)
	}
	if _, err := store.OpenRedis(ctx, "http://x", store.Options{}); err == nil || !strings.Contains(err.Error(), "redis url") {
		t.Fatalf("bad redis url: %v", err)
	}
	if _, err := store.OpenPostgres(ctx, "postgres://x/y?sslmode=nonsense", store.Options{}); err == nil || !strings.Contains(err.Error(), "postgres dsn") {
		t.Fatalf("bad postgres dsn: %v", err)
	}
}

// PostgreSQL drops the store's connections mid-way (a restart, a failover):
// writes in flight fail with an error or succeed, never half-applied, and the
// store recovers without being reopened.
func TestPostgresConnectionsKilled(t *testing.T) {
	dsn, prefix := testenv.PostgresDSN(t), testenv.UniqueName("gone")
	app := prefix
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	s, err := store.OpenPostgres(context.Background(), dsn+sep+"application_name="+app, store.Options{Prefix: prefix, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close(); dropTables(t, dsn, prefix+"_txn", prefix+"_txn_branch") }()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Go(func() { errs[i] = s.Create(ctx, newTxn(fmt.Sprintf("k%d", i))) })
		if i == 10 {
			if _, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	for i, werr := range errs {
		got, gerr := s.Get(ctx, fmt.Sprintf("k%d", i))
		switch {
		case werr == nil && (gerr != nil || len(got.Branches) != 1):
			t.Fatalf("k%d acknowledged but not stored whole: %v %+v", i, gerr, got)
		case werr != nil && gerr == nil && len(got.Branches) != 1:
			t.Fatalf("k%d half applied: %+v", i, got)
		case werr != nil && gerr != nil && !errors.Is(gerr, store.ErrNotFound):
			t.Fatalf("k%d: store did not recover: %v", i, gerr)
		}
	}
	if err := s.Create(ctx, newTxn("after")); err != nil {
		t.Fatalf("store did not recover: %v", err)
	}
}
