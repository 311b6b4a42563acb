package barrier_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite"

	"github.com/rosenmesh/rosen/internal/testenv"
	"github.com/rosenmesh/rosen/txn/barrier"
	"github.com/rosenmesh/rosen/txn/placeholder"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// env is one engine with a barrier and a business table of reservations.
type env struct {
	db    *sql.DB
	b     *barrier.Barrier
	d     barrier.Dialect
	table string
}

func (e *env) q(s string) string {
	if e.d != barrier.Postgres {
		return s
	}
	return placeholder.Dollar(s)
}

// reserve adds one reservation row for the branch (the Try's business change).
func (e *env) reserve(tx *sql.Tx, br barrier.Branch) error {
	_, err := tx.Exec(e.q(`INSERT INTO `+e.table+` (txn_id, branch_id) VALUES (?, ?)`), br.TxnID, br.BranchID)
	return err
}

func (e *env) release(tx *sql.Tx, br barrier.Branch) error {
	_, err := tx.Exec(e.q(`DELETE FROM `+e.table+` WHERE txn_id = ? AND branch_id = ?`), br.TxnID, br.BranchID)
	return err
}

func (e *env) reservations(t *testing.T, br barrier.Branch) int {
	var n int
	if err := e.db.QueryRow(e.q(`SELECT COUNT(*) FROM `+e.table+` WHERE txn_id = ? AND branch_id = ?`), br.TxnID, br.BranchID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func engines(t *testing.T, body func(t *testing.T, e *env)) {
	open := map[string]func(t *testing.T) (*sql.DB, barrier.Dialect){
		"postgres": func(t *testing.T) (*sql.DB, barrier.Dialect) {
			db, err := sql.Open("pgx", testenv.PostgresDSN(t))
			if err != nil {
				t.Fatal(err)
			}
			return db, barrier.Postgres
		},
		"mariadb": func(t *testing.T) (*sql.DB, barrier.Dialect) {
			db, err := sql.Open("mysql", testenv.MySQLDSN(t))
			if err != nil {
				t.Fatal(err)
			}
			return db, barrier.MySQL
		},
		"sqlite": func(t *testing.T) (*sql.DB, barrier.Dialect) {
			dsn := "file:" + filepath.Join(t.TempDir(), "p.db") + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate"
			db, err := sql.Open("sqlite", dsn)
			if err != nil {
				t.Fatal(err)
			}
			return db, barrier.SQLite
		},
	}
	for _, name := range []string{"postgres", "mariadb", "sqlite"} {
		t.Run(name, func(t *testing.T) {
			db, d := open[name](t)
			t.Cleanup(func() { _ = db.Close() })
			bt, table := testenv.UniqueName("bar"), testenv.UniqueName("resv")
			b, err := barrier.New(context.Background(), db, d, bt)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`CREATE TABLE ` + table + ` (txn_id VARCHAR(128) NOT NULL, branch_id VARCHAR(128) NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_, _ = db.Exec(`DROP TABLE ` + table)
				_, _ = db.Exec(`DROP TABLE ` + bt)
			})
			body(t, &env{db: db, b: b, d: d, table: table})
		})
	}
}

func TestIdempotentPhases(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		br := barrier.Branch{TxnID: "t1", BranchID: "b1"}
		var tries, confirms atomic.Int32
		for range 3 {
			if err := e.b.Try(ctx, br, func(tx *sql.Tx) error { tries.Add(1); return e.reserve(tx, br) }); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			if err := e.b.Confirm(ctx, br, func(tx *sql.Tx) error { confirms.Add(1); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if tries.Load() != 1 || confirms.Load() != 1 || e.reservations(t, br) != 1 {
			t.Fatalf("tries %d confirms %d reservations %d", tries.Load(), confirms.Load(), e.reservations(t, br))
		}
		err := e.b.Cancel(ctx, br, func(*sql.Tx, barrier.TryState) error { t.Fatal("cancel ran after confirm"); return nil })
		if !errors.Is(err, barrier.ErrConflict) {
			t.Fatalf("cancel after confirm: %v", err)
		}
		other := barrier.Branch{TxnID: "t1", BranchID: "never-tried"}
		if err := e.b.Confirm(ctx, other, func(*sql.Tx) error { return nil }); !errors.Is(err, barrier.ErrNotTried) {
			t.Fatalf("confirm without try: %v", err)
		}
		if err := e.b.Try(ctx, barrier.Branch{TxnID: "bad id", BranchID: "x"}, nil); !errors.Is(err, barrier.ErrBadInput) {
			t.Fatalf("bad id: %v", err)
		}
	})
}

// Cancel before Try: empty compensation, and the late Try is refused (no hanging reservation).
func TestEmptyCompensationAndHanging(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		br := barrier.Branch{TxnID: "t2", BranchID: "b1"}
		ran := false
		for range 2 {
			if err := e.b.Cancel(ctx, br, func(*sql.Tx, barrier.TryState) error { ran = true; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if ran {
			t.Fatal("compensation ran without a try")
		}
		err := e.b.Try(ctx, br, func(tx *sql.Tx) error { return e.reserve(tx, br) })
		if !errors.Is(err, barrier.ErrHanging) || e.reservations(t, br) != 0 {
			t.Fatalf("late try: %v, reservations %d", err, e.reservations(t, br))
		}
	})
}

// Seata's fence bug: Try fails after a side effect outside the database; the
// Cancel must still run (told TryStarted) and compensate it.
func TestCancelCompensatesFailedTryWithOutsideEffects(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		br := barrier.Branch{TxnID: "t3", BranchID: "b1"}
		var cache atomic.Int32 // stands for Redis, a sent message, a remote call
		err := e.b.Try(ctx, br, func(tx *sql.Tx) error {
			if err := e.reserve(tx, br); err != nil {
				return err
			}
			cache.Add(1)
			return errors.New("downstream timeout")
		})
		if err == nil || e.reservations(t, br) != 0 || cache.Load() != 1 {
			t.Fatalf("try: %v, reservations %d, cache %d", err, e.reservations(t, br), cache.Load())
		}
		var seen barrier.TryState
		err = e.b.Cancel(ctx, br, func(tx *sql.Tx, tried barrier.TryState) error {
			seen = tried
			cache.Add(-1)
			return e.release(tx, br)
		})
		if err != nil || seen != barrier.TryStarted || cache.Load() != 0 {
			t.Fatalf("cancel: %v, saw %q, cache %d", err, seen, cache.Load())
		}
		if err := e.b.Try(ctx, br, func(tx *sql.Tx) error { return e.reserve(tx, br) }); !errors.Is(err, barrier.ErrHanging) {
			t.Fatalf("retried try after cancel: %v", err)
		}
		// A Try that committed is compensated as done.
		ok := barrier.Branch{TxnID: "t3", BranchID: "b2"}
		_ = e.b.Try(ctx, ok, func(tx *sql.Tx) error { return e.reserve(tx, ok) })
		_ = e.b.Cancel(ctx, ok, func(tx *sql.Tx, tried barrier.TryState) error { seen = tried; return e.release(tx, ok) })
		if seen != barrier.TryDone || e.reservations(t, ok) != 0 {
			t.Fatalf("cancel after try: %q %d", seen, e.reservations(t, ok))
		}
	})
}

// Try and Cancel racing: never a reservation left behind, never a compensation of nothing.
func TestTryRacingCancel(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for i := range 25 {
			br := barrier.Branch{TxnID: fmt.Sprintf("race-%d", i), BranchID: "b"}
			var wg sync.WaitGroup
			var tryErr, cancelErr error
			wg.Go(func() { tryErr = e.b.Try(ctx, br, func(tx *sql.Tx) error { return e.reserve(tx, br) }) })
			wg.Go(func() {
				cancelErr = e.b.Cancel(ctx, br, func(tx *sql.Tx, tried barrier.TryState) error { return e.release(tx, br) })
			})
			wg.Wait()
			if cancelErr != nil {
				t.Fatalf("%s cancel: %v", br.TxnID, cancelErr)
			}
			if tryErr != nil && !errors.Is(tryErr, barrier.ErrHanging) {
				t.Fatalf("%s try: %v", br.TxnID, tryErr)
			}
			if n := e.reservations(t, br); n != 0 {
				t.Fatalf("%s: %d reservations left after cancel (try err %v)", br.TxnID, n, tryErr)
			}
		}
	})
}
