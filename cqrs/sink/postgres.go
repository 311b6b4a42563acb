package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// Postgres writes a batch of rows as one text array per column, unnested and
// cast to the columns' own types (read once from the catalog): the server
// parses every number from its literal text (exact bigint and numeric), and a
// value that does not fit its column is the server's type error. Tables with
// array or composite columns, and deletes, go as one JSON parameter expanded
// by json_populate_recordset instead.
type Postgres struct {
	pool  *pgxpool.Pool
	types sync.Map // table → map[column]pgColumn
}

type pgColumn struct {
	typ  string // format_type: "numeric(12,2)", "timestamp with time zone"
	json bool   // json or jsonb: values are written as JSON text
	text bool   // castable from its text form (not an array or composite)
}

// OpenPostgres connects to dsn (a URL or key=value string).
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// Live writers of a view wait on its guard while a replay's swap
		// holds it, and the swap's catch-up needs connections of its own.
		cfg.MaxConns = max(cfg.MaxConns, 16)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return &Postgres{pool: pool}, nil
}

// columns reads a table's column types (cached until a write to it fails).
func (p *Postgres) columns(ctx context.Context, table string) (map[string]pgColumn, error) {
	if c, ok := p.types.Load(table); ok {
		return c.(map[string]pgColumn), nil
	}
	rows, err := p.pool.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname, t.typcategory
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped`, pgQuote(table))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols := map[string]pgColumn{}
	for rows.Next() {
		var name, typ, typname, cat string
		if err := rows.Scan(&name, &typ, &typname, &cat); err != nil {
			return nil, err
		}
		cols[name] = pgColumn{typ: typ, json: typname == "json" || typname == "jsonb", text: cat != "A" && cat != "C"}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	p.types.Store(table, cols)
	return cols, nil
}

func (p *Postgres) Dialect() string                { return rules.DBPostgres }
func (p *Postgres) Ping(ctx context.Context) error { return p.pool.Ping(ctx) }
func (p *Postgres) Close() error                   { p.pool.Close(); return nil }

// Permanent: data exceptions (22), integrity violations (23) and
// syntax/undefined objects (42: schema drift) are the row's fault.
func (p *Postgres) Permanent(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		c := pe.Code[:2]
		return c == "22" || c == "23" || c == "42"
	}
	return false
}

// Prepare runs under an advisory lock: workers starting together would
// otherwise race on CREATE TABLE IF NOT EXISTS (a unique violation in pg_type).
func (p *Postgres) Prepare(ctx context.Context, rs []*rules.Rule) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7305200001)`); err != nil {
		return fmt.Errorf("lock for DDL: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+OffsetTable+` (view_name text NOT NULL, lane text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (view_name, lane)) WITH (fillfactor = 50)`); err != nil {
		return fmt.Errorf("create offset table: %w", err)
	}
	for _, r := range rs {
		if !r.CreateTable {
			continue
		}
		if _, err := tx.Exec(ctx, createTableSQL(rules.DBPostgres, r)); err != nil {
			return fmt.Errorf("create table %s: %w", r.Table, err)
		}
	}
	return tx.Commit(ctx)
}

func (p *Postgres) ResetView(ctx context.Context, view, table string, truncate bool) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, pgGuardLock, view); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+OffsetTable+` WHERE view_name = $1`, view); err != nil {
		return err
	}
	if truncate {
		if _, err := tx.Exec(ctx, `DELETE FROM `+pgQuote(table)); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

func (p *Postgres) Begin(ctx context.Context) (Tx, error) {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &pgTx{tx: tx, p: p}, nil
}

// pgGuardLock is the first key of the advisory locks that guard views: every
// write transaction takes its view's lock shared, a replay's swap exclusive.
const pgGuardLock = 730520002

// pgTx queues its writes and sends them in one pipeline before COMMIT, so a
// batch costs BEGIN, the guarded offset read and one round trip of writes.
type pgTx struct {
	tx     pgx.Tx
	p      *Postgres
	writes pgx.Batch
	tables []string // written: their cached types are dropped if the batch fails
}

func (t *pgTx) queue(sql string, args ...any) { t.writes.Queue(sql, args...) }

func (t *pgTx) Commit(ctx context.Context) error {
	if t.writes.Len() > 0 {
		if err := t.tx.SendBatch(ctx, &t.writes).Close(); err != nil {
			_ = t.tx.Rollback(ctx)
			for _, tb := range t.tables {
				t.p.types.Delete(tb) // schema drift: read the columns again next time
			}
			return err
		}
	}
	return t.tx.Commit(ctx)
}

func (t *pgTx) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

// Offsets waits for any swap of the view (shared advisory lock), then reads
// the offsets in a statement of its own, so it sees what a swap committed.
func (t *pgTx) Offsets(ctx context.Context, view string) (map[string]uint64, error) {
	var b pgx.Batch
	b.Queue(`SELECT pg_advisory_xact_lock_shared($1, hashtext($2))`, pgGuardLock, view)
	b.Queue(`SELECT lane, seq FROM `+OffsetTable+` WHERE view_name = $1`, view)
	br := t.tx.SendBatch(ctx, &b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
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
		out[k] = uint64(s)
	}
	return out, rows.Err()
}

func (t *pgTx) SetOffsets(ctx context.Context, view string, offs map[string]uint64) error {
	lanes := make([]string, 0, len(offs))
	seqs := make([]int64, 0, len(offs))
	for k, s := range offs {
		lanes = append(lanes, k)
		seqs = append(seqs, int64(s))
	}
	t.queue(`INSERT INTO `+OffsetTable+` AS o (view_name, lane, seq)
SELECT $1, l, s FROM unnest($2::text[], $3::bigint[]) AS u(l, s)
ON CONFLICT (view_name, lane) DO UPDATE SET seq = GREATEST(o.seq, EXCLUDED.seq)`, view, lanes, seqs)
	return nil
}

func (t *pgTx) Delete(ctx context.Context, table string, pk []string, rows []map[string]any) error {
	doc, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	cols := pgList(pk)
	t.queue(fmt.Sprintf(`DELETE FROM %s WHERE (%s) IN (SELECT %s FROM json_populate_recordset(NULL::%s, $1::json))`,
		pgQuote(table), cols, cols, pgQuote(table)), string(doc))
	return nil
}

func (t *pgTx) Upsert(ctx context.Context, table string, pk, cols []string, rows []map[string]any) error {
	var set []string
	for _, c := range cols {
		if !contains(pk, c) {
			set = append(set, pgQuote(c)+" = EXCLUDED."+pgQuote(c))
		}
	}
	conflict := "DO NOTHING"
	if len(set) > 0 {
		conflict = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	list := pgList(cols)
	types, err := t.p.columns(ctx, table)
	if err != nil {
		return err
	}
	t.tables = append(t.tables, table)
	arrays, casts, ok := pgColumnArrays(types, cols, rows)
	if !ok {
		doc, err := json.Marshal(rows)
		if err != nil {
			return err
		}
		t.queue(fmt.Sprintf(`INSERT INTO %s (%s) SELECT %s FROM json_populate_recordset(NULL::%s, $1::json) ON CONFLICT (%s) %s`,
			pgQuote(table), list, list, pgQuote(table), pgList(pk), conflict), string(doc))
		return nil
	}
	params := make([]string, len(cols))
	aliases := make([]string, len(cols))
	args := make([]any, len(cols))
	for i := range cols {
		params[i] = fmt.Sprintf("$%d::text[]", i+1)
		aliases[i] = fmt.Sprintf("c%d", i+1)
		args[i] = arrays[i]
	}
	t.queue(fmt.Sprintf(`INSERT INTO %s (%s) SELECT %s FROM unnest(%s) AS u(%s) ON CONFLICT (%s) %s`,
		pgQuote(table), list, strings.Join(casts, ", "), strings.Join(params, ", "), strings.Join(aliases, ", "), pgList(pk), conflict), args...)
	return nil
}

// pgColumnArrays turns rows into one text array per column with the casts
// that read them back; ok is false when a column cannot travel as text
// (arrays, composites). A column the table lacks is cast to text, so the
// INSERT fails with the server's "column does not exist". Elements are
// pointers to values that pgx reads through pgtype.TextValuer: nothing is
// allocated per element while pgx encodes the arrays.
func pgColumnArrays(types map[string]pgColumn, cols []string, rows []map[string]any) ([]pgtype.FlatArray[*pgElem], []string, bool) {
	casts := make([]string, len(cols))
	arrays := make([]pgtype.FlatArray[*pgElem], len(cols))
	elems := make([]pgElem, len(cols)*len(rows))
	ptrs := make([]*pgElem, len(cols)*len(rows))
	for i, c := range cols {
		ct, known := types[c]
		if known && !ct.text {
			return nil, nil, false
		}
		typ := "text"
		if known {
			typ = ct.typ
		}
		casts[i] = fmt.Sprintf("u.c%d::%s", i+1, typ)
		arr := ptrs[i*len(rows) : (i+1)*len(rows)]
		for j, r := range rows {
			e := &elems[i*len(rows)+j]
			var ok bool
			if e.Text, ok = pgText(r[c], ct.json); !ok {
				return nil, nil, false
			}
			arr[j] = e
		}
		arrays[i] = arr
	}
	return arrays, casts, true
}

// pgElem is one array element (NULL when not Valid).
type pgElem struct{ pgtype.Text }

// TextValue implements pgtype.TextValuer on the pointer, so that an array
// of them is encoded without boxing each element.
func (e *pgElem) TextValue() (pgtype.Text, error) {
	if e == nil {
		return pgtype.Text{}, nil
	}
	return e.Text, nil
}

// pgText is a value's text form as its column's input function reads it:
// numbers keep their literal digits, JSON columns get JSON text, nested
// objects in other columns their JSON text (as json_populate_recordset does).
func pgText(v any, asJSON bool) (pgtype.Text, bool) {
	if v == nil {
		return pgtype.Text{}, true // NULL
	}
	if !asJSON {
		switch x := v.(type) {
		case string:
			return pgtype.Text{String: x, Valid: true}, true
		case json.Number:
			return pgtype.Text{String: x.String(), Valid: true}, true
		case bool:
			if x {
				return pgtype.Text{String: "true", Valid: true}, true
			}
			return pgtype.Text{String: "false", Valid: true}, true
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return pgtype.Text{}, false
	}
	s := string(b)
	if !asJSON && len(b) > 0 && b[0] == '"' {
		_ = json.Unmarshal(b, &s) // a time or other text-marshalled value: its text
	}
	return pgtype.Text{String: s, Valid: true}, true
}

func pgQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func pgList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgQuote(c)
	}
	return strings.Join(q, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
