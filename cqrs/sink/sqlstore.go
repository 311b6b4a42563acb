package sink

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// sqlDialect is what MySQL and SQLite differ in; both write multi-row
// INSERT … VALUES with an upsert tail through database/sql.
type sqlDialect struct {
	name      string
	quote     func(string) string
	upsert    func(quotedPK, quotedSet []string) string // the tail after VALUES
	offUpsert string                                    // the offset table's tail after VALUES
	offDDL    string
	// guard is the locking read of the view's guard row (MySQL); empty where
	// transactions are serialised anyway (SQLite: one connection).
	guard     string
	value     func(any) (any, error)
	permanent func(error) bool
	maxParams int
	// intColumns reads which of a table's columns are integers (MySQL,
	// whose BOOLEAN is TINYINT(1), so the two are told apart); nil where a
	// value is not checked against the table.
	intColumns func(ctx context.Context, db *sql.DB, table string) (map[string]bool, error)
}

// SQLStore is a database/sql Store (MySQL/MariaDB, SQLite).
type SQLStore struct {
	db   *sql.DB
	d    sqlDialect
	ints sync.Map // table → map[column]bool: its integer columns
}

// checkInts refuses a value that an integer column of the table would round
// or convert (MySQL stores 19.5 as 20 and true as 1, onto another row for a
// key) with rules.ErrValue, for tables whose rules declare no types. The
// columns are cached; before refusing, they are read again (the table may
// have changed since).
func (t *sqlTx) checkInts(ctx context.Context, table string, cols []string, rows []map[string]any) error {
	if t.s.d.intColumns == nil {
		return nil
	}
	check := func(ints map[string]bool) error {
		for _, c := range cols {
			if !ints[strings.ToLower(c)] {
				continue
			}
			for _, r := range rows {
				if err := rules.CheckInteger(c, r[c]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if c, ok := t.s.ints.Load(table); ok && check(c.(map[string]bool)) == nil {
		return nil
	}
	ints, err := t.s.d.intColumns(ctx, t.s.db, table)
	if err != nil {
		return err
	}
	t.s.ints.Store(table, ints)
	return check(ints)
}

func (s *SQLStore) Dialect() string                  { return s.d.name }
func (s *SQLStore) Ping(ctx context.Context) error   { return s.db.PingContext(ctx) }
func (s *SQLStore) Close() error                     { return s.db.Close() }
func (s *SQLStore) Permanent(err error) bool         { return s.d.permanent(err) }
func (s *SQLStore) DB() *sql.DB                      { return s.db }
func (s *SQLStore) quoteList(cols []string) []string { return mapStrings(cols, s.d.quote) }

func (s *SQLStore) Prepare(ctx context.Context, rs []*rules.Rule) error {
	if _, err := s.db.ExecContext(ctx, s.d.offDDL); err != nil {
		return fmt.Errorf("create offset table: %w", err)
	}
	for _, r := range rs {
		if err := s.ensureGuard(ctx, r.ViewName()); err != nil {
			return fmt.Errorf("guard row of view %s: %w", r.ViewName(), err)
		}
		if r.CreateTable {
			if _, err := s.db.ExecContext(ctx, createTableSQL(s.d.name, r)); err != nil {
				return fmt.Errorf("create table %s: %w", r.Table, err)
			}
		}
	}
	return nil
}

func (s *SQLStore) ResetView(ctx context.Context, view, table string, truncate bool) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if s.d.guard != "" {
		if _, err := tx.ExecContext(ctx, strings.Replace(s.d.guard, "LOCK IN SHARE MODE", "FOR UPDATE", 1), view); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+OffsetTable+` WHERE view_name = ? AND lane <> ?`, view, guardLane); err != nil {
		return err
	}
	if truncate {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+s.d.quote(table)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// ensureGuard inserts the view's guard row (seq 0) if it is missing.
func (s *SQLStore) ensureGuard(ctx context.Context, view string) error {
	if s.d.guard == "" {
		return nil
	}
	_, err := s.db.ExecContext(ctx, `INSERT IGNORE INTO `+OffsetTable+` (view_name, lane, seq) VALUES (?, ?, 0)`, view, guardLane)
	return err
}

func (s *SQLStore) Begin(ctx context.Context) (Tx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &sqlTx{tx: tx, s: s}, nil
}

type sqlTx struct {
	tx *sql.Tx
	s  *SQLStore
}

func (t *sqlTx) Commit(context.Context) error   { return t.tx.Commit() }
func (t *sqlTx) Rollback(context.Context) error { return t.tx.Rollback() }

// chunk splits n rows of width params each under the dialect's parameter limit.
func (t *sqlTx) chunk(n, width int, f func(lo, hi int) error) error {
	per := max(1, t.s.d.maxParams/max(1, width))
	for lo := 0; lo < n; lo += per {
		if err := f(lo, min(n, lo+per)); err != nil {
			return err
		}
	}
	return nil
}

// Offsets share-locks the view's guard row (waiting out a swap), then reads
// the offsets with a plain read: its snapshot starts at that read (the
// guard's locking read makes none), so it sees what a swap committed. A
// locking read of every lane would deadlock two partitions' transactions,
// each holding a share lock on the other's lane row before updating its own.
func (t *sqlTx) Offsets(ctx context.Context, view string) (map[string]uint64, error) {
	q := `SELECT lane, seq FROM ` + OffsetTable + ` WHERE view_name = ?`
	if t.s.d.guard != "" {
		var seq int64
		if err := t.tx.QueryRowContext(ctx, t.s.d.guard, view).Scan(&seq); errors.Is(err, sql.ErrNoRows) {
			// Prepare creates it; a view added since gets it here.
			if _, err := t.tx.ExecContext(ctx, `INSERT IGNORE INTO `+OffsetTable+` (view_name, lane, seq) VALUES (?, ?, 0)`, view, guardLane); err != nil {
				return nil, err
			}
			if err := t.tx.QueryRowContext(ctx, t.s.d.guard, view).Scan(&seq); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, err
		}
	}
	rows, err := t.tx.QueryContext(ctx, q, view)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var k string
		var s int64
		if err := rows.Scan(&k, &s); err != nil {
			return nil, err
		}
		if k != guardLane {
			out[k] = uint64(s)
		}
	}
	return out, rows.Err()
}

func (t *sqlTx) SetOffsets(ctx context.Context, view string, offs map[string]uint64) error {
	args := make([]any, 0, 3*len(offs))
	for k, s := range offs {
		args = append(args, view, k, int64(s))
	}
	_, err := t.tx.ExecContext(ctx, `INSERT INTO `+OffsetTable+` (view_name, lane, seq) VALUES `+placeholders(len(offs), 3)+` `+t.s.d.offUpsert, args...)
	return err
}

func (t *sqlTx) Delete(ctx context.Context, table string, pk []string, rows []map[string]any) error {
	if err := t.checkInts(ctx, table, pk, rows); err != nil {
		return err
	}
	return t.chunk(len(rows), len(pk), func(lo, hi int) error {
		args, err := t.args(rows[lo:hi], pk)
		if err != nil {
			return err
		}
		q := fmt.Sprintf(`DELETE FROM %s WHERE (%s) IN (VALUES %s)`, t.s.d.quote(table), strings.Join(t.s.quoteList(pk), ", "), placeholders(hi-lo, len(pk)))
		if len(pk) == 1 {
			q = fmt.Sprintf(`DELETE FROM %s WHERE %s IN (%s)`, t.s.d.quote(table), t.s.d.quote(pk[0]), placeholders(hi-lo, 1))
		} else if t.s.d.name == rules.DBMySQL {
			q = fmt.Sprintf(`DELETE FROM %s WHERE (%s) IN (%s)`, t.s.d.quote(table), strings.Join(t.s.quoteList(pk), ", "), placeholders(hi-lo, len(pk)))
		}
		_, err = t.tx.ExecContext(ctx, q, args...)
		return err
	})
}

func (t *sqlTx) Upsert(ctx context.Context, table string, pk, cols []string, rows []map[string]any) error {
	var set []string
	for _, c := range cols {
		if !contains(pk, c) {
			set = append(set, t.s.d.quote(c))
		}
	}
	tail := t.s.d.upsert(t.s.quoteList(pk), set)
	if err := t.checkInts(ctx, table, cols, rows); err != nil {
		return err
	}
	return t.chunk(len(rows), len(cols), func(lo, hi int) error {
		args, err := t.args(rows[lo:hi], cols)
		if err != nil {
			return err
		}
		q := fmt.Sprintf(`INSERT INTO %s (%s) VALUES %s %s`, t.s.d.quote(table), strings.Join(t.s.quoteList(cols), ", "), placeholders(hi-lo, len(cols)), tail)
		if _, err = t.tx.ExecContext(ctx, q, args...); err != nil && t.s.d.name == rules.DBMySQL {
			return mysqlExplain(err, pk[0])
		}
		return err
	})
}

func (t *sqlTx) args(rows []map[string]any, cols []string) ([]any, error) {
	args := make([]any, 0, len(rows)*len(cols))
	for _, r := range rows {
		for _, c := range cols {
			v, err := t.s.d.value(r[c])
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", c, err)
			}
			args = append(args, v)
		}
	}
	return args, nil
}

// placeholders is "(?,?),(?,?)" for n rows of width w; a single "?,?" list when w is 1.
func placeholders(n, w int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", w), ",") + ")"
	if w == 1 {
		row = "?"
	}
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

// jsonText renders nested objects and arrays as JSON text for a text/JSON column.
func jsonText(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func mapStrings(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f(s)
	}
	return out
}
