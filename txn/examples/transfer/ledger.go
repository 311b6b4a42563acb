// Package transfer is the money-transfer example: a ledger service that is a
// TCC participant. Two of them, each with its own accounts table, take part
// in one global transaction: the payer's ledger debits, the payee's credits.
//
// Try moves money out of the balance into "held" (debit) or announces it as
// "incoming" (credit); Confirm settles; Cancel puts everything back. At every
// moment balance+held summed over both ledgers is constant; once every
// transaction has ended, held and incoming are zero everywhere.
package transfer

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/rosenmesh/rosen/txn/barrier"
	"github.com/rosenmesh/rosen/txn/participant"
	"github.com/rosenmesh/rosen/txn/placeholder"
)

// Move is the payload of every call: amount < 0 debits the account, > 0 credits it.
type Move struct {
	Account string `json:"account"`
	Amount  int64  `json:"amount"`
}

// Ledger is one participant service's accounts in its own table.
type Ledger struct {
	db    *sql.DB
	d     barrier.Dialect
	table string
	svc   *participant.Service
}

// New creates the ledger's tables (accounts and barrier) in db.
func New(ctx context.Context, db *sql.DB, d barrier.Dialect, name string) (*Ledger, error) {
	l := &Ledger{db: db, d: d, table: name + "_accounts"}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+l.table+` (
		id VARCHAR(64) PRIMARY KEY, balance BIGINT NOT NULL, held BIGINT NOT NULL DEFAULT 0, incoming BIGINT NOT NULL DEFAULT 0)`); err != nil {
		return nil, fmt.Errorf("transfer: create %s: %w", l.table, err)
	}
	b, err := barrier.New(ctx, db, d, name+"_barrier")
	if err != nil {
		return nil, err
	}
	l.svc = &participant.Service{Barrier: b, Try: l.try, Confirm: l.confirm, Cancel: l.cancel}
	return l, nil
}

// Handler serves /try, /confirm and /cancel (the phase comes from the protocol header).
func (l *Ledger) Handler() http.Handler { return l.svc }

// Open sets an account's balance.
func (l *Ledger) Open(ctx context.Context, account string, balance int64) error {
	_, err := l.db.ExecContext(ctx, l.q(`INSERT INTO `+l.table+` (id, balance) VALUES (?, ?)`), account, balance)
	if err != nil {
		return fmt.Errorf("transfer: open %s: %w", account, err)
	}
	return nil
}

// Totals sums balance, held and incoming over all accounts.
func (l *Ledger) Totals(ctx context.Context) (balance, held, incoming int64, err error) {
	err = l.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(balance),0), COALESCE(SUM(held),0), COALESCE(SUM(incoming),0) FROM `+l.table).Scan(&balance, &held, &incoming)
	return
}

func (l *Ledger) q(s string) string {
	if l.d != barrier.Postgres {
		return s
	}
	return placeholder.Dollar(s)
}

func move(c participant.Call) (Move, error) {
	var m Move
	if err := json.Unmarshal(c.Payload, &m); err != nil || m.Account == "" || m.Amount == 0 {
		return m, fmt.Errorf("%w: payload %q: want {\"account\":…, \"amount\": non-zero}", participant.ErrRefused, c.Payload)
	}
	return m, nil
}

func (l *Ledger) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, l.q(query), args...)
	if err != nil {
		return fmt.Errorf("transfer: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: no such account or not enough money", participant.ErrRefused)
	}
	return nil
}

func (l *Ledger) try(ctx context.Context, tx *sql.Tx, c participant.Call) error {
	m, err := move(c)
	if err != nil {
		return err
	}
	if m.Amount < 0 {
		return l.exec(ctx, tx, `UPDATE `+l.table+` SET balance = balance - ?, held = held + ? WHERE id = ? AND balance >= ?`, -m.Amount, -m.Amount, m.Account, -m.Amount)
	}
	return l.exec(ctx, tx, `UPDATE `+l.table+` SET incoming = incoming + ? WHERE id = ?`, m.Amount, m.Account)
}

func (l *Ledger) confirm(ctx context.Context, tx *sql.Tx, c participant.Call) error {
	m, err := move(c)
	if err != nil {
		return err
	}
	if m.Amount < 0 {
		return l.exec(ctx, tx, `UPDATE `+l.table+` SET held = held - ? WHERE id = ?`, -m.Amount, m.Account)
	}
	return l.exec(ctx, tx, `UPDATE `+l.table+` SET balance = balance + ?, incoming = incoming - ? WHERE id = ?`, m.Amount, m.Amount, m.Account)
}

func (l *Ledger) cancel(ctx context.Context, tx *sql.Tx, c participant.Call) error {
	if c.Tried != barrier.TryDone {
		return nil // the Try's database change rolled back and it touched nothing outside
	}
	m, err := move(c)
	if err != nil {
		return err
	}
	if m.Amount < 0 {
		return l.exec(ctx, tx, `UPDATE `+l.table+` SET balance = balance + ?, held = held - ? WHERE id = ?`, -m.Amount, -m.Amount, m.Account)
	}
	return l.exec(ctx, tx, `UPDATE `+l.table+` SET incoming = incoming - ? WHERE id = ?`, m.Amount, m.Account)
}
