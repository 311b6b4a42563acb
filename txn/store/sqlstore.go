package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// sqlStore implements Store on SQLite through database/sql, with group
// commit: writes that arrive while one commits share the next transaction
// (each in its own savepoint, so one write's failure undoes only that write),
// and each caller is released only after that transaction committed.
type sqlStore struct {
	db *sql.DB
	d  dialect
	t  tables
	g  *grouper
}

// queryer is a *sql.DB or a *sql.Tx.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func newSQLStore(ctx context.Context, db *sql.DB, d dialect, prefix string) (*sqlStore, error) {
	t, err := newTables(prefix)
	if err != nil {
		return nil, err
	}
	s := &sqlStore{db: db, d: d, t: t}
	for _, q := range d.schema(t) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("store: create schema on %s: %w", d.name, err)
		}
	}
	// One connection: one writer. A failed SQLite transaction (this process's
	// own file) is rolled back, so its writes may always run again alone.
	// A write's own failure is its answer (op.err), never execBatch's error:
	// an error from execBatch is the database failing.
	s.g = newGrouper(1, 256, s.execBatch, func(error) bool { return true }, func(error) bool { return false })
	return s, nil
}

// execBatch runs ops in one transaction, each inside a savepoint.
func (s *sqlStore) execBatch(ctx context.Context, ops []*groupOp) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	for _, op := range ops {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT w`); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("store: savepoint: %w", err)
		}
		if op.err = op.fn(ctx, tx); op.err != nil {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO w`); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("store: rollback to savepoint: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE w`); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("store: release savepoint: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// write runs fn in the next group commit; fn's error is the write's answer
// (its changes are undone), and so is a commit that failed.
func (s *sqlStore) write(ctx context.Context, key string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.g.do(ctx, &groupOp{key: key, fn: fn})
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func (s *sqlStore) q(query string) string { return s.d.rebind(query) }

func (s *sqlStore) Create(ctx context.Context, t *Txn) error {
	policy := marshalPolicy(t.Policy)
	headers := marshalHeaders(t.Headers)
	return s.write(ctx, t.ID, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO `+s.t.txn+` (id, state, policy, headers, created_at, updated_at, deadline, next_due)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
			t.ID, string(Trying), string(policy), string(headers), micros(t.CreatedAt), micros(t.CreatedAt), micros(t.Deadline), micros(t.Deadline))
		if err != nil {
			return fmt.Errorf("store: create %s: %w", t.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s", ErrExists, t.ID)
		}
		for i, b := range t.Branches {
			if err := s.insertBranch(ctx, tx, t.ID, i, b, t.CreatedAt); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *sqlStore) insertBranch(ctx context.Context, tx *sql.Tx, txnID string, seq int, b Branch, now time.Time) error {
	confirm := marshalAction(b.Confirm)
	cancel := marshalAction(b.Cancel)
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO `+s.t.branch+` (txn_id, branch_id, seq, confirm_action, cancel_action, state, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (txn_id, branch_id) DO NOTHING`),
		txnID, b.ID, seq, confirm, cancel, string(BranchRegistered), micros(now))
	if err != nil {
		return fmt.Errorf("store: add branch %s/%s: %w", txnID, b.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var oldConfirm, oldCancel []byte
	if err := tx.QueryRowContext(ctx, s.q(`SELECT confirm_action, cancel_action FROM `+s.t.branch+` WHERE txn_id = ? AND branch_id = ?`),
		txnID, b.ID).Scan(&oldConfirm, &oldCancel); err != nil {
		return fmt.Errorf("store: read branch %s/%s: %w", txnID, b.ID, err)
	}
	if bytes.Equal(oldConfirm, confirm) && bytes.Equal(oldCancel, cancel) {
		return nil // the same registration again (a retried request)
	}
	return fmt.Errorf("%w: %s/%s", ErrDuplicateBranch, txnID, b.ID)
}

func (s *sqlStore) AddBranch(ctx context.Context, txnID string, b Branch, now time.Time) error {
	confirm := marshalAction(b.Confirm)
	cancel := marshalAction(b.Cancel)
	return s.write(ctx, txnID, func(ctx context.Context, tx *sql.Tx) error {
		// Inserted only while the transaction is trying and before its deadline.
		// Branches are ordered by registration time.
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO `+s.t.branch+` (txn_id, branch_id, seq, confirm_action, cancel_action, state, updated_at)
			SELECT id, ?, ?, ?, ?, ?, ? FROM `+s.t.txn+` WHERE id = ? AND state = ? AND deadline > ?`+s.d.forShare+`
			ON CONFLICT (txn_id, branch_id) DO NOTHING`),
			b.ID, micros(now), confirm, cancel, string(BranchRegistered), micros(now), txnID, string(Trying), micros(now))
		if err != nil {
			return fmt.Errorf("store: add branch %s/%s: %w", txnID, b.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		t, err := s.get(ctx, tx, txnID)
		if err != nil {
			return err
		}
		return whyNoBranch(t, b, confirm, cancel)
	})
}

const txnColumns = `id, state, stuck_phase, reason, policy, headers, created_at, updated_at, deadline, finished_at, next_due, owner, lease_until, attempts, last_error`

func scanTxn(row interface{ Scan(...any) error }) (*Txn, error) {
	var t Txn
	var state, stuck, policy, headers string
	var created, updated, deadline, finished, due, lease int64
	if err := row.Scan(&t.ID, &state, &stuck, &t.Reason, &policy, &headers, &created, &updated, &deadline, &finished, &due, &t.Owner, &lease, &t.Attempts, &t.LastError); err != nil {
		return nil, err
	}
	t.State, t.StuckPhase = State(state), State(stuck)
	if err := unmarshalPolicy([]byte(policy), &t.Policy); err != nil {
		return nil, fmt.Errorf("store: %s: policy: %w", t.ID, err)
	}
	if err := unmarshalHeaders([]byte(headers), &t.Headers); err != nil {
		return nil, fmt.Errorf("store: %s: headers: %w", t.ID, err)
	}
	t.CreatedAt, t.UpdatedAt, t.Deadline = fromMicros(created), fromMicros(updated), fromMicros(deadline)
	t.FinishedAt, t.NextDue, t.LeaseUntil = fromMicros(finished), fromMicros(due), fromMicros(lease)
	return &t, nil
}

func (s *sqlStore) Get(ctx context.Context, id string) (*Txn, error) {
	return s.get(ctx, s.db, id)
}

func (s *sqlStore) get(ctx context.Context, q queryer, id string) (*Txn, error) {
	t, err := scanTxn(q.QueryRowContext(ctx, s.q(`SELECT `+txnColumns+` FROM `+s.t.txn+` WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", id, err)
	}
	return t, s.loadBranches(ctx, q, t)
}

func (s *sqlStore) loadBranches(ctx context.Context, q queryer, t *Txn) error {
	id := t.ID
	rows, err := q.QueryContext(ctx, s.q(`SELECT branch_id, confirm_action, cancel_action, state, attempts, last_error, updated_at FROM `+s.t.branch+` WHERE txn_id = ? ORDER BY seq, branch_id`), id)
	if err != nil {
		return fmt.Errorf("store: get %s branches: %w", id, err)
	}
	defer func() { _ = rows.Close() }()
	t.Branches = []Branch{}
	for rows.Next() {
		var b Branch
		var confirm, cancel []byte
		var state string
		var updated int64
		if err := rows.Scan(&b.ID, &confirm, &cancel, &state, &b.Attempts, &b.LastError, &updated); err != nil {
			return fmt.Errorf("store: get %s branches: %w", id, err)
		}
		if err := unmarshalAction(confirm, &b.Confirm); err != nil {
			return fmt.Errorf("store: %s/%s confirm: %w", id, b.ID, err)
		}
		if err := unmarshalAction(cancel, &b.Cancel); err != nil {
			return fmt.Errorf("store: %s/%s cancel: %w", id, b.ID, err)
		}
		b.State, b.UpdatedAt = BranchState(state), fromMicros(updated)
		t.Branches = append(t.Branches, b)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: get %s branches: %w", id, err)
	}
	return nil
}

func (s *sqlStore) List(ctx context.Context, f Filter) ([]*Txn, error) {
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	query := `SELECT ` + txnColumns + ` FROM ` + s.t.txn
	var args []any
	if f.State != "" {
		query += ` WHERE state = ?`
		args = append(args, string(f.State))
	}
	query += ` ORDER BY created_at DESC, id LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := []*Txn{}
	for rows.Next() {
		t, err := scanTxn(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	return out, nil
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func (s *sqlStore) Transition(ctx context.Context, id string, tr Transition) (*Txn, error) {
	if len(tr.From) == 0 || !tr.To.Valid() {
		return nil, fmt.Errorf("store: transition %s: bad states %v → %q", id, tr.From, tr.To)
	}
	query := `UPDATE ` + s.t.txn + ` SET state = ?, updated_at = ?, owner = ?, lease_until = ?, next_due = ?`
	args := []any{string(tr.To), micros(tr.Now), tr.Owner, micros(tr.LeaseUntil), micros(tr.NextDue)}
	if tr.Reason != "" {
		query += `, reason = ?`
		args = append(args, tr.Reason)
	}
	if tr.ResetAttempts {
		query += `, attempts = 0, stuck_phase = ''`
	}
	if tr.To.Final() {
		query += `, finished_at = ?`
		args = append(args, micros(tr.Now))
	}
	query += ` WHERE id = ? AND state IN (` + placeholders(len(tr.From)) + `)`
	args = append(args, id)
	for _, f := range tr.From {
		args = append(args, string(f))
	}
	if tr.BeforeDeadline {
		query += ` AND deadline > ?`
		args = append(args, micros(tr.Now))
	}
	if tr.AfterDeadline {
		query += ` AND deadline <= ?`
		args = append(args, micros(tr.Now))
	}
	query += ` RETURNING ` + txnColumns
	var t *Txn
	err := s.write(ctx, id, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		t, err = scanTxn(tx.QueryRowContext(ctx, s.q(query), args...))
		if err == nil {
			return s.loadBranches(ctx, tx, t)
		}
		t = nil
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: transition %s to %s: %w", id, tr.To, err)
		}
		return errNoChange
	})
	if !errors.Is(err, errNoChange) {
		return t, err
	}
	// Nothing changed: say why.
	t, err = s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if tr.BeforeDeadline && t.State == Trying {
		return t, fmt.Errorf("%w: %s", ErrTimedOut, id)
	}
	return t, fmt.Errorf("%w: %s is %s, not %v", ErrState, id, t.State, tr.From)
}

// errNoChange is a compare-and-set that matched no row.
var errNoChange = errors.New("store: no change")

func (s *sqlStore) ClaimDue(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]string, error) {
	query := `UPDATE ` + s.t.txn + ` SET owner = ?, lease_until = ? WHERE id IN (
		SELECT id FROM ` + s.t.txn + ` WHERE state IN ('trying','confirming','cancelling') AND next_due <= ? AND lease_until <= ?
		ORDER BY next_due LIMIT ?` + s.d.skipLocked + `) RETURNING id`
	rows, err := s.db.QueryContext(ctx, s.q(query), owner, micros(leaseUntil), micros(now), micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("store: claim due work: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: claim due work: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: claim due work: %w", err)
	}
	return ids, nil
}

func (s *sqlStore) SaveProgress(ctx context.Context, id string, p Progress) error {
	return s.write(ctx, id, func(ctx context.Context, tx *sql.Tx) error {
		query := `UPDATE ` + s.t.txn + ` SET state = ?, updated_at = ?, next_due = ?, owner = '', lease_until = 0, attempts = ?, last_error = ?`
		args := []any{string(p.To), micros(p.Now), micros(p.NextDue), p.Attempts, p.LastError}
		if p.To == Stuck {
			query += `, stuck_phase = ?`
			args = append(args, string(p.From))
		}
		if p.To.Final() {
			query += `, finished_at = ?`
			args = append(args, micros(p.Now))
		}
		query += ` WHERE id = ? AND state = ? AND owner = ?`
		args = append(args, id, string(p.From), p.Owner)
		res, err := tx.ExecContext(ctx, s.q(query), args...)
		if err != nil {
			return fmt.Errorf("store: save progress of %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s", ErrLeaseLost, id)
		}
		if len(p.Branches) == 0 {
			return nil
		}
		// All branch outcomes in one statement.
		row := `SELECT CAST(? AS TEXT) AS id, CAST(? AS TEXT) AS state, CAST(? AS INTEGER) AS attempts, CAST(? AS TEXT) AS err`
		values := strings.TrimSuffix(strings.Repeat(row+" UNION ALL ", len(p.Branches)), " UNION ALL ")
		bargs := []any{micros(p.Now), id}
		for _, b := range p.Branches {
			bargs = append(bargs, b.ID, string(b.State), b.Attempts, b.LastError)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE `+s.t.branch+` SET state = v.state, attempts = v.attempts, last_error = v.err, updated_at = ?
			FROM (`+values+`) AS v WHERE txn_id = ? AND branch_id = v.id`), reorder(bargs)...); err != nil {
			return fmt.Errorf("store: save branches of %s: %w", id, err)
		}
		return nil
	})
}

// reorder puts the VALUES arguments before updated_at and txn_id, matching
// the placeholders' order in the statement (SET, VALUES, WHERE).
func reorder(args []any) []any {
	out := make([]any, 0, len(args))
	out = append(out, args[0])
	out = append(out, args[2:]...)
	return append(out, args[1])
}

func (s *sqlStore) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	var n int
	err := s.write(ctx, "", func(ctx context.Context, tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM `+s.t.txn+` WHERE created_at <= ? AND finished_at <= ? AND state IN ('committed','aborted') ORDER BY created_at LIMIT ?`,
			micros(before), micros(before), limit)
		if err != nil {
			return fmt.Errorf("store: purge: %w", err)
		}
		var ids []any
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				_ = rows.Close()
				return fmt.Errorf("store: purge: %w", err)
			}
			ids = append(ids, id)
		}
		_ = rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: purge: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		in := placeholders(len(ids))
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+s.t.branch+` WHERE txn_id IN (`+in+`)`, ids...); err != nil {
			return fmt.Errorf("store: purge branches: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+s.t.txn+` WHERE id IN (`+in+`)`, ids...); err != nil {
			return fmt.Errorf("store: purge: %w", err)
		}
		n = len(ids)
		return nil
	})
	return n, err
}

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", s.d.name, err)
	}
	return nil
}

func (s *sqlStore) Close() error {
	s.g.close()
	return s.db.Close()
}
