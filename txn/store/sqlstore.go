package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// sqlStore implements Store on database/sql for both engines.
type sqlStore struct {
	db *sql.DB
	d  dialect
	t  tables
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
	return s, nil
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

func (s *sqlStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

func (s *sqlStore) Create(ctx context.Context, t *Txn) error {
	policy, _ := json.Marshal(t.Policy)
	headers, _ := json.Marshal(t.Headers)
	return s.inTx(ctx, func(tx *sql.Tx) error {
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
	confirm, _ := json.Marshal(b.Confirm)
	cancel, _ := json.Marshal(b.Cancel)
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
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// A shared row lock: concurrent registrations proceed together, but a commit or
		// abort (which updates the row) waits for them and then sees every branch.
		var state string
		var deadline, count int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT state, deadline FROM `+s.t.txn+` WHERE id = ?`+s.d.forShare), txnID).Scan(&state, &deadline)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrNotFound, txnID)
		}
		if err != nil {
			return fmt.Errorf("store: add branch %s: %w", txnID, err)
		}
		if State(state) != Trying {
			return fmt.Errorf("%w: %s is %s", ErrState, txnID, state)
		}
		if deadline <= micros(now) {
			return fmt.Errorf("%w: %s", ErrTimedOut, txnID)
		}
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM `+s.t.branch+` WHERE txn_id = ?`), txnID).Scan(&count); err != nil {
			return fmt.Errorf("store: add branch %s: %w", txnID, err)
		}
		return s.insertBranch(ctx, tx, txnID, int(count), b, now)
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
	if err := json.Unmarshal([]byte(policy), &t.Policy); err != nil {
		return nil, fmt.Errorf("store: %s: policy: %w", t.ID, err)
	}
	if err := json.Unmarshal([]byte(headers), &t.Headers); err != nil {
		return nil, fmt.Errorf("store: %s: headers: %w", t.ID, err)
	}
	t.CreatedAt, t.UpdatedAt, t.Deadline = fromMicros(created), fromMicros(updated), fromMicros(deadline)
	t.FinishedAt, t.NextDue, t.LeaseUntil = fromMicros(finished), fromMicros(due), fromMicros(lease)
	return &t, nil
}

func (s *sqlStore) Get(ctx context.Context, id string) (*Txn, error) {
	t, err := scanTxn(s.db.QueryRowContext(ctx, s.q(`SELECT `+txnColumns+` FROM `+s.t.txn+` WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", id, err)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT branch_id, confirm_action, cancel_action, state, attempts, last_error, updated_at FROM `+s.t.branch+` WHERE txn_id = ? ORDER BY seq`), id)
	if err != nil {
		return nil, fmt.Errorf("store: get %s branches: %w", id, err)
	}
	defer func() { _ = rows.Close() }()
	t.Branches = []Branch{}
	for rows.Next() {
		var b Branch
		var confirm, cancel []byte
		var state string
		var updated int64
		if err := rows.Scan(&b.ID, &confirm, &cancel, &state, &b.Attempts, &b.LastError, &updated); err != nil {
			return nil, fmt.Errorf("store: get %s branches: %w", id, err)
		}
		if err := json.Unmarshal(confirm, &b.Confirm); err != nil {
			return nil, fmt.Errorf("store: %s/%s confirm: %w", id, b.ID, err)
		}
		if err := json.Unmarshal(cancel, &b.Cancel); err != nil {
			return nil, fmt.Errorf("store: %s/%s cancel: %w", id, b.ID, err)
		}
		b.State, b.UpdatedAt = BranchState(state), fromMicros(updated)
		t.Branches = append(t.Branches, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: get %s branches: %w", id, err)
	}
	return t, nil
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
	res, err := s.db.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: transition %s to %s: %w", id, tr.To, err)
	}
	n, _ := res.RowsAffected()
	t, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		if tr.BeforeDeadline && t.State == Trying {
			return t, fmt.Errorf("%w: %s", ErrTimedOut, id)
		}
		return t, fmt.Errorf("%w: %s is %s, not %v", ErrState, id, t.State, tr.From)
	}
	return t, nil
}

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
	return s.inTx(ctx, func(tx *sql.Tx) error {
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
		for _, b := range p.Branches {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE `+s.t.branch+` SET state = ?, attempts = ?, last_error = ?, updated_at = ? WHERE txn_id = ? AND branch_id = ?`),
				string(b.State), b.Attempts, b.LastError, micros(p.Now), id, b.ID); err != nil {
				return fmt.Errorf("store: save branch %s/%s: %w", id, b.ID, err)
			}
		}
		return nil
	})
}

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", s.d.name, err)
	}
	return nil
}

func (s *sqlStore) Close() error { return s.db.Close() }
