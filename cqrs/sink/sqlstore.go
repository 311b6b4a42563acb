package sink

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// sqlDialect is what MySQL and SQLite differ in; both write multi-row
// INSERT … VALUES with an upsert tail through database/sql.
type sqlDialect struct {
	name      string
	quote     func(string) string
	upsert    func(quotedPK, quotedSet []string) string // the tail after VALUES
	wmUpsert  string                                    // the watermark table's tail after VALUES
	wmDDL     string
	value     func(any) (any, error)
	permanent func(error) bool
	maxParams int
}

// SQLStore is a database/sql Store (MySQL/MariaDB, SQLite).
type SQLStore struct {
	db *sql.DB
	d  sqlDialect
}

func (s *SQLStore) Dialect() string                  { return s.d.name }
func (s *SQLStore) Ping(ctx context.Context) error   { return s.db.PingContext(ctx) }
func (s *SQLStore) Close() error                     { return s.db.Close() }
func (s *SQLStore) Permanent(err error) bool         { return s.d.permanent(err) }
func (s *SQLStore) DB() *sql.DB                      { return s.db }
func (s *SQLStore) quoteList(cols []string) []string { return mapStrings(cols, s.d.quote) }

func (s *SQLStore) Prepare(ctx context.Context, rs []*rules.Rule) error {
	if _, err := s.db.ExecContext(ctx, s.d.wmDDL); err != nil {
		return fmt.Errorf("create watermark table: %w", err)
	}
	for _, r := range rs {
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
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+WatermarkTable+` WHERE view_name = ?`, view); err != nil {
		return err
	}
	if truncate {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+s.d.quote(table)); err != nil {
			return err
		}
	}
	return tx.Commit()
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

func (t *sqlTx) Watermarks(ctx context.Context, view string, keys []string) (map[string]uint64, error) {
	out := make(map[string]uint64, len(keys))
	err := t.chunk(len(keys), 1, func(lo, hi int) error {
		args := []any{view}
		for _, k := range keys[lo:hi] {
			args = append(args, k)
		}
		rows, err := t.tx.QueryContext(ctx, `SELECT row_key, seq FROM `+WatermarkTable+` WHERE view_name = ? AND row_key IN (`+placeholders(hi-lo, 1)+`)`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var s int64
			if err := rows.Scan(&k, &s); err != nil {
				return err
			}
			out[k] = uint64(s)
		}
		return rows.Err()
	})
	return out, err
}

func (t *sqlTx) SetWatermarks(ctx context.Context, view string, marks map[string]uint64) error {
	keys := make([]string, 0, len(marks))
	for k := range marks {
		keys = append(keys, k)
	}
	return t.chunk(len(keys), 3, func(lo, hi int) error {
		args := make([]any, 0, 3*(hi-lo))
		for _, k := range keys[lo:hi] {
			args = append(args, view, k, int64(marks[k]))
		}
		_, err := t.tx.ExecContext(ctx, `INSERT INTO `+WatermarkTable+` (view_name, row_key, seq) VALUES `+placeholders(hi-lo, 3)+` `+t.s.d.wmUpsert, args...)
		return err
	})
}

func (t *sqlTx) Delete(ctx context.Context, table string, pk []string, rows []map[string]any) error {
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
