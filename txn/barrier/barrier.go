// Package barrier makes a TCC participant's Try, Confirm and Cancel safe
// against the network: each runs in the participant's own database
// transaction together with a barrier row, so that
//
//   - every phase is idempotent (a repeated call does nothing and succeeds);
//   - a Cancel without a Try is a no-op (empty compensation) and fences the branch;
//   - a Try that arrives after its Cancel is refused (ErrHanging): no hanging reservation;
//   - a Try that started but failed still gets its Cancel, told TryStarted, so
//     side effects outside the database (a cache, a message, a remote call) are
//     compensated. Seata's TCC fence wrote its "tried" mark inside the Try's own
//     transaction, so a failed Try left no mark and the Cancel was skipped; here
//     the mark is committed before the Try's business transaction begins.
//
// It works on PostgreSQL, MySQL/MariaDB and SQLite through database/sql. For
// SQLite open the database with _txlock=immediate and a busy_timeout, so that
// concurrent barrier transactions wait instead of failing with SQLITE_BUSY.
package barrier

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/rosenmesh/rosen/txn/placeholder"
)

// Dialect is the SQL engine behind the *sql.DB.
type Dialect int

// Supported engines.
const (
	Postgres Dialect = iota
	MySQL            // MySQL and MariaDB (InnoDB)
	SQLite
)

// Errors a handler turns into "failed for good" (HTTP 409) for the coordinator.
var (
	ErrHanging  = errors.New("barrier: try refused: the branch was already cancelled")
	ErrConflict = errors.New("barrier: the branch was already settled the other way")
	ErrNotTried = errors.New("barrier: confirm without a completed try")
	ErrBadInput = errors.New("barrier: bad input")
)

// TryState tells Cancel what its Try did.
type TryState string

// Try states seen by a Cancel that compensates.
const (
	TryDone    TryState = "done"    // Try's transaction committed
	TryStarted TryState = "started" // Try began (and may have had outside effects) but its transaction did not commit
)

// Branch names one participant branch of a global transaction.
type Branch struct {
	TxnID    string
	BranchID string
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$`)

func (b Branch) check() error {
	if !idRe.MatchString(b.TxnID) || !idRe.MatchString(b.BranchID) {
		return fmt.Errorf("%w: transaction %q / branch %q: want 1-128 characters of [A-Za-z0-9._:@-]", ErrBadInput, b.TxnID, b.BranchID)
	}
	return nil
}

// Barrier guards one participant's branches in its database.
type Barrier struct {
	db     *sql.DB
	d      Dialect
	table  string
	insert string // insert-if-absent of one barrier row
	lock   string // row lock suffix
}

var tableRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,60}$`)

// New creates the barrier table (default "rosen_barrier") if it is missing.
// The business tables must be in the same database: the barrier row and the
// business change commit together.
func New(ctx context.Context, db *sql.DB, d Dialect, table string) (*Barrier, error) {
	if table == "" {
		table = "rosen_barrier"
	}
	if !tableRe.MatchString(table) {
		return nil, fmt.Errorf("%w: table %q", ErrBadInput, table)
	}
	b := &Barrier{db: db, d: d, table: table}
	switch d {
	case Postgres, SQLite:
		b.insert = `INSERT INTO ` + table + ` (txn_id, branch_id, op, state, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	case MySQL:
		b.insert = `INSERT IGNORE INTO ` + table + ` (txn_id, branch_id, op, state, created_at) VALUES (?, ?, ?, ?, ?)`
	default:
		return nil, fmt.Errorf("%w: dialect %d", ErrBadInput, d)
	}
	if d != SQLite {
		b.lock = " FOR UPDATE"
	}
	ddl := `CREATE TABLE IF NOT EXISTS ` + table + ` (
		txn_id VARCHAR(128) NOT NULL,
		branch_id VARCHAR(128) NOT NULL,
		op VARCHAR(16) NOT NULL,
		state VARCHAR(16) NOT NULL,
		created_at BIGINT NOT NULL,
		PRIMARY KEY (txn_id, branch_id, op))`
	if _, err := db.ExecContext(ctx, ddl); err != nil {
		return nil, fmt.Errorf("barrier: create table %s: %w", table, err)
	}
	return b, nil
}

func (b *Barrier) q(query string) string {
	if b.d != Postgres {
		return query
	}
	return placeholder.Dollar(query)
}

// mark inserts a barrier row if absent and reports whether it did.
func (b *Barrier) mark(ctx context.Context, tx *sql.Tx, br Branch, op, state string) (bool, error) {
	res, err := tx.ExecContext(ctx, b.q(b.insert), br.TxnID, br.BranchID, op, state, time.Now().UnixMicro())
	if err != nil {
		return false, fmt.Errorf("barrier: %s %s/%s: %w", op, br.TxnID, br.BranchID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("barrier: %s %s/%s: %w", op, br.TxnID, br.BranchID, err)
	}
	return n == 1, nil
}

// state reads a barrier row under a row lock ("" when absent).
func (b *Barrier) state(ctx context.Context, tx *sql.Tx, br Branch, op string) (string, error) {
	var s string
	err := tx.QueryRowContext(ctx, b.q(`SELECT state FROM `+b.table+` WHERE txn_id = ? AND branch_id = ? AND op = ?`+b.lock),
		br.TxnID, br.BranchID, op).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("barrier: read %s %s/%s: %w", op, br.TxnID, br.BranchID, err)
	}
	return s, nil
}

func (b *Barrier) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("barrier: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("barrier: commit: %w", err)
	}
	return nil
}

// errSkip ends a barrier transaction successfully without running the business function.
var errSkip = errors.New("skip")

// run runs one barrier transaction. A deadlock or serialization failure met
// before the business function started is retried (the engine rolled the
// whole transaction back); once the business function has run, its error is
// returned as is, and the coordinator's retry decides.
func (b *Barrier) run(ctx context.Context, fn func(tx *sql.Tx, started *bool) error) error {
	for attempt := 1; ; attempt++ {
		started := false
		err := b.inTx(ctx, func(tx *sql.Tx) error { return fn(tx, &started) })
		if errors.Is(err, errSkip) {
			return nil
		}
		if err == nil || started || attempt == 5 || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		}
	}
}

// transient reports a lock conflict the engine resolved by rolling back.
func transient(err error) bool {
	s := err.Error()
	for _, m := range []string{"Error 1213", "Error 1205", "SQLSTATE 40P01", "SQLSTATE 40001", "database is locked", "SQLITE_BUSY"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}
