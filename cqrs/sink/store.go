// Package sink writes projected rows into read-model databases (PostgreSQL,
// MySQL/MariaDB, SQLite): batched, folded per key in event order, idempotent
// through a per-lane sequence watermark (a lane is one ordered broker
// partition) that is written in the same transaction as the rows, with bad
// rows isolated for the dead-letter stream.
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

// OffsetTable holds, per view and lane, the sequence of the last event
// applied. Every key's events travel in one lane, in order, so "seq <= the
// lane's offset" is exactly "already applied" (see docs/cqrs.md).
const OffsetTable = "rosen_cqrs_offsets"

// guardLane names the row (MySQL) that every write transaction of a view
// share-locks first, so that a replay's swap can hold the view's writers off.
const guardLane = "#guard"

// Store is one database behind a dialect.
type Store interface {
	Dialect() string
	Begin(ctx context.Context) (Tx, error)
	Ping(ctx context.Context) error
	// Permanent reports whether err is the row's fault (it would fail again).
	Permanent(err error) bool
	// Prepare creates the offset table, and the rules' tables that ask for it.
	Prepare(ctx context.Context, rs []*rules.Rule) error
	// ResetView deletes a view's offsets and, when truncate is set, its rows.
	ResetView(ctx context.Context, view, table string, truncate bool) error
	Close() error
}

// Tx is one transaction's writes.
type Tx interface {
	// Offsets share-locks the view against a replay's swap and reads its
	// lanes' offsets; it comes before any write to the view's table.
	Offsets(ctx context.Context, view string) (map[string]uint64, error)
	Delete(ctx context.Context, table string, pk []string, rows []map[string]any) error
	Upsert(ctx context.Context, table string, pk, cols []string, rows []map[string]any) error
	// SetOffsets raises the view's lane offsets (never lowers them).
	SetOffsets(ctx context.Context, view string, offs map[string]uint64) error
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}
