package barrier

import (
	"context"
	"database/sql"
	"fmt"
)

// Barrier row states. The "try" row is the fence: Try inserts it as started
// (committed on its own) and turns it to done in the business transaction;
// a Cancel that finds no row inserts it as empty; a Cancel that compensates
// turns it to cancelled. A Try that finds empty or cancelled is refused.
const (
	opTry     = "try"
	opConfirm = "confirm"
	opCancel  = "cancel"

	stStarted   = "started"
	stDone      = "done"
	stEmpty     = "empty"
	stCancelled = "cancelled"
)

// Try runs fn (the reservation) in a database transaction guarded by the
// barrier. It returns nil without running fn when the Try already completed,
// and ErrHanging when the branch was cancelled first. When fn fails its
// changes roll back, but the branch stays marked as started, so the Cancel
// that follows compensates (told TryStarted) whatever fn did outside the
// database.
func (b *Barrier) Try(ctx context.Context, br Branch, fn func(tx *sql.Tx) error) error {
	if err := br.check(); err != nil {
		return err
	}
	// 1. The fence, committed on its own before any business effect.
	proceed := true
	err := b.run(ctx, func(tx *sql.Tx, _ *bool) error {
		inserted, err := b.mark(ctx, tx, br, opTry, stStarted)
		if err != nil || inserted {
			return err
		}
		s, err := b.state(ctx, tx, br, opTry)
		if err != nil {
			return err
		}
		switch s {
		case stDone:
			proceed = false // a repeated Try: it already reserved
		case stEmpty, stCancelled:
			return fmt.Errorf("%w: %s/%s", ErrHanging, br.TxnID, br.BranchID)
		}
		return nil // started: an earlier attempt failed or is in flight; the lock below decides
	})
	if err != nil || !proceed {
		return err
	}
	// 2. The business transaction, which also flips the fence to done under its row lock.
	return b.run(ctx, func(tx *sql.Tx, started *bool) error {
		res, err := tx.ExecContext(ctx, b.q(`UPDATE `+b.table+` SET state = ? WHERE txn_id = ? AND branch_id = ? AND op = ? AND state = ?`),
			stDone, br.TxnID, br.BranchID, opTry, stStarted)
		if err != nil {
			return fmt.Errorf("barrier: try %s/%s: %w", br.TxnID, br.BranchID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			s, err := b.state(ctx, tx, br, opTry)
			if err != nil {
				return err
			}
			if s == stDone {
				return errSkip // a concurrent repeat finished first
			}
			return fmt.Errorf("%w: %s/%s", ErrHanging, br.TxnID, br.BranchID)
		}
		*started = true
		return fn(tx)
	})
}

// Confirm runs fn once for the branch, after a completed Try. A repeated
// Confirm returns nil without running fn.
func (b *Barrier) Confirm(ctx context.Context, br Branch, fn func(tx *sql.Tx) error) error {
	if err := br.check(); err != nil {
		return err
	}
	return b.run(ctx, func(tx *sql.Tx, started *bool) error {
		inserted, err := b.mark(ctx, tx, br, opConfirm, stDone)
		if err != nil {
			return err
		}
		if !inserted {
			return errSkip
		}
		s, err := b.state(ctx, tx, br, opTry)
		if err != nil {
			return err
		}
		switch s {
		case stDone:
			*started = true
			return fn(tx)
		case stEmpty, stCancelled:
			return fmt.Errorf("%w: %s/%s was cancelled", ErrConflict, br.TxnID, br.BranchID)
		}
		return fmt.Errorf("%w: %s/%s (try is %q)", ErrNotTried, br.TxnID, br.BranchID, s)
	})
}

// Cancel compensates the branch once. Without any Try it records the fence
// and returns nil without running fn (empty compensation; a later Try is
// refused). Otherwise fn runs with TryDone or TryStarted. A repeated Cancel
// returns nil without running fn. If fn fails nothing is recorded and the
// coordinator's retry runs it again.
func (b *Barrier) Cancel(ctx context.Context, br Branch, fn func(tx *sql.Tx, tried TryState) error) error {
	if err := br.check(); err != nil {
		return err
	}
	return b.run(ctx, func(tx *sql.Tx, started *bool) error {
		inserted, err := b.mark(ctx, tx, br, opCancel, stDone)
		if err != nil {
			return err
		}
		if !inserted {
			return errSkip
		}
		// Lock the fence row first (an exclusive lock straight away: taking a shared
		// lock and upgrading it is what deadlocks InnoDB when a Try races in).
		s, err := b.state(ctx, tx, br, opTry)
		if err != nil {
			return err
		}
		if s == "" {
			empty, err := b.mark(ctx, tx, br, opTry, stEmpty)
			if err != nil {
				return err
			}
			if empty {
				return nil // commit: the fence against a late Try, no compensation
			}
			if s, err = b.state(ctx, tx, br, opTry); err != nil { // a Try got its fence in first
				return err
			}
		}
		confirmed, err := b.state(ctx, tx, br, opConfirm)
		if err != nil {
			return err
		}
		if confirmed != "" {
			return fmt.Errorf("%w: %s/%s was confirmed", ErrConflict, br.TxnID, br.BranchID)
		}
		if _, err := tx.ExecContext(ctx, b.q(`UPDATE `+b.table+` SET state = ? WHERE txn_id = ? AND branch_id = ? AND op = ?`),
			stCancelled, br.TxnID, br.BranchID, opTry); err != nil {
			return fmt.Errorf("barrier: cancel %s/%s: %w", br.TxnID, br.BranchID, err)
		}
		tried := TryDone
		if s == stStarted {
			tried = TryStarted
		}
		*started = true
		return fn(tx, tried)
	})
}
