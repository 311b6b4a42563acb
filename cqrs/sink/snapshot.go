package sink

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// ErrNoSnapshot is a restore of a view that has no snapshot.
var ErrNoSnapshot = errors.New("sink: no snapshot")

// Snapshot tables: the view's rows go to rosen_snap_<view>, its offsets to
// rosen_cqrs_snapshot_offsets, and the event-store sequence up to which every
// event is in the copy to rosen_cqrs_snapshots.
const (
	snapMarks = "rosen_cqrs_snapshot_offsets"
	snapMeta  = "rosen_cqrs_snapshots"
)

// snapDB runs the dialect-neutral snapshot SQL; q() rewrites ? into $n for PostgreSQL.
type snapDB struct {
	dialect string
	exec    func(ctx context.Context, q string, args ...any) error
	seq     func(ctx context.Context, view string) (uint64, error)
}

func snapTable(view string) string { return "rosen_snap_" + view }

func (d snapDB) q(s string) string {
	if d.dialect != rules.DBPostgres {
		return s
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (d snapDB) prepare(ctx context.Context, view, table string) error {
	quote := pgQuote
	if d.dialect == rules.DBMySQL {
		quote = myQuote
	}
	for _, s := range []string{
		"CREATE TABLE IF NOT EXISTS " + quote(snapTable(view)) + " AS SELECT * FROM " + quote(table) + " WHERE 1 = 0",
		"CREATE TABLE IF NOT EXISTS " + snapMarks + " (view_name VARCHAR(191) NOT NULL, lane VARCHAR(191) NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (view_name, lane))",
		"CREATE TABLE IF NOT EXISTS " + snapMeta + " (view_name VARCHAR(191) NOT NULL PRIMARY KEY, seq BIGINT NOT NULL)",
	} {
		if err := d.exec(ctx, s); err != nil {
			return fmt.Errorf("snapshot tables: %w", err)
		}
	}
	return nil
}

// copyView runs inside one transaction: rows and offsets from one moment.
func (d snapDB) copyView(ctx context.Context, view, table string, seq uint64, restore bool) error {
	quote := pgQuote
	if d.dialect == rules.DBMySQL {
		quote = myQuote
	}
	src, dst := quote(table), quote(snapTable(view))
	marksFrom, marksTo := OffsetTable, snapMarks
	if restore {
		src, dst = dst, src
		marksFrom, marksTo = marksTo, marksFrom
	}
	stmts := []struct {
		q    string
		args []any
	}{
		{"DELETE FROM " + dst, nil},
		{"INSERT INTO " + dst + " SELECT * FROM " + src, nil},
		{"DELETE FROM " + marksTo + " WHERE view_name = ? AND lane <> ?", []any{view, guardLane}},
		{"INSERT INTO " + marksTo + " (view_name, lane, seq) SELECT view_name, lane, seq FROM " + marksFrom + " WHERE view_name = ? AND lane <> ?", []any{view, guardLane}},
	}
	if !restore {
		stmts = append(stmts,
			struct {
				q    string
				args []any
			}{"DELETE FROM " + snapMeta + " WHERE view_name = ?", []any{view}},
			struct {
				q    string
				args []any
			}{"INSERT INTO " + snapMeta + " (view_name, seq) VALUES (?, ?)", []any{view, int64(seq)}})
	}
	for _, s := range stmts {
		if err := d.exec(ctx, d.q(s.q), s.args...); err != nil {
			return err
		}
	}
	return nil
}

// SnapshotView copies a view's rows and offsets in one repeatable-read
// transaction; every event up to seq (the event store's acknowledged floor,
// read before the copy) is in it.
func SnapshotView(ctx context.Context, st Store, view, table string, seq uint64) error {
	plain, run, err := snapAdapters(st)
	if err != nil {
		return err
	}
	if err := plain.prepare(ctx, view, table); err != nil {
		return err
	}
	return run(ctx, func(d snapDB) error { return d.copyView(ctx, view, table, seq, false) })
}

// RestoreView puts a snapshot back and returns its sequence: replaying the
// event store after it brings the view up to date (offsets skip the rest).
func RestoreView(ctx context.Context, st Store, view, table string) (uint64, error) {
	plain, run, err := snapAdapters(st)
	if err != nil {
		return 0, err
	}
	if err := plain.prepare(ctx, view, table); err != nil {
		return 0, err
	}
	var seq uint64
	err = run(ctx, func(d snapDB) error {
		var err error
		if seq, err = d.seq(ctx, view); err != nil {
			return err
		}
		return d.copyView(ctx, view, table, seq, true)
	})
	return seq, err
}

type txRunner func(ctx context.Context, f func(snapDB) error) error

// snapAdapters gives a store's plain executor (for DDL, which MySQL commits
// implicitly) and a runner of repeatable-read transactions.
func snapAdapters(st Store) (snapDB, txRunner, error) {
	switch s := st.(type) {
	case *Postgres:
		plain := snapDB{dialect: rules.DBPostgres, exec: pgExec(s.pool.Exec)}
		return plain, func(ctx context.Context, f func(snapDB) error) error {
			tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback(ctx) }()
			d := snapDB{dialect: rules.DBPostgres, exec: pgExec(tx.Exec), seq: func(ctx context.Context, view string) (uint64, error) {
				var n int64
				err := tx.QueryRow(ctx, "SELECT seq FROM "+snapMeta+" WHERE view_name = $1", view).Scan(&n)
				if errors.Is(err, pgx.ErrNoRows) {
					return 0, fmt.Errorf("%w for view %q", ErrNoSnapshot, view)
				}
				return uint64(n), err
			}}
			if err := f(d); err != nil {
				return err
			}
			return tx.Commit(ctx)
		}, nil
	case *SQLStore:
		plain := snapDB{dialect: s.d.name, exec: sqlExec(s.db.ExecContext)}
		return plain, func(ctx context.Context, f func(snapDB) error) error {
			opts := &sql.TxOptions{Isolation: sql.LevelRepeatableRead}
			if s.d.name == rules.DBSQLite {
				opts = nil // one writer: every SQLite transaction is serializable
			}
			tx, err := s.db.BeginTx(ctx, opts)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			d := snapDB{dialect: s.d.name, exec: sqlExec(tx.ExecContext), seq: func(ctx context.Context, view string) (uint64, error) {
				var n int64
				err := tx.QueryRowContext(ctx, "SELECT seq FROM "+snapMeta+" WHERE view_name = ?", view).Scan(&n)
				if errors.Is(err, sql.ErrNoRows) {
					return 0, fmt.Errorf("%w for view %q", ErrNoSnapshot, view)
				}
				return uint64(n), err
			}}
			if err := f(d); err != nil {
				return err
			}
			return tx.Commit()
		}, nil
	}
	return snapDB{}, nil, fmt.Errorf("%w: snapshots need a SQL store", ErrConfig)
}

func pgExec[T any](f func(context.Context, string, ...any) (T, error)) func(context.Context, string, ...any) error {
	return func(ctx context.Context, q string, args ...any) error { _, err := f(ctx, q, args...); return err }
}

func sqlExec(f func(context.Context, string, ...any) (sql.Result, error)) func(context.Context, string, ...any) error {
	return func(ctx context.Context, q string, args ...any) error { _, err := f(ctx, q, args...); return err }
}
