// Package sink writes projected rows into read-model databases (PostgreSQL,
// MySQL/MariaDB, SQLite): batched, folded per key in event order, idempotent
// through a per-key sequence watermark that is written in the same
// transaction as the rows, with bad rows isolated for the dead-letter stream.
package sink

import (
	"context"
	"errors"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// Sentinel errors.
var (
	// ErrUnavailable is a transient failure (database down, connection lost):
	// nothing is acknowledged and the batch is retried.
	ErrUnavailable = errors.New("sink: database unavailable")
	// ErrRejected wraps a permanent failure of one row (type mismatch,
	// constraint violation, unknown column): the event is dead-lettered.
	ErrRejected = errors.New("sink: row rejected")
	ErrConfig   = errors.New("sink: bad database config")
)

// WatermarkTable holds, per view and row key, the sequence of the last event applied.
const WatermarkTable = "rosen_cqrs_watermarks"

// Store is one database behind a dialect.
type Store interface {
	Dialect() string
	Begin(ctx context.Context) (Tx, error)
	Ping(ctx context.Context) error
	// Permanent reports whether err is the row's fault (it would fail again).
	Permanent(err error) bool
	// Prepare creates the watermark table, and the rules' tables that ask for it.
	Prepare(ctx context.Context, rs []*rules.Rule) error
	// ResetView deletes a view's watermarks and, when truncate is set, its rows.
	ResetView(ctx context.Context, view, table string, truncate bool) error
	Close() error
}

// Tx is one transaction's writes.
type Tx interface {
	Watermarks(ctx context.Context, view string, keys []string) (map[string]uint64, error)
	Delete(ctx context.Context, table string, pk []string, rows []map[string]any) error
	Upsert(ctx context.Context, table string, pk, cols []string, rows []map[string]any) error
	SetWatermarks(ctx context.Context, view string, marks map[string]uint64) error
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}
