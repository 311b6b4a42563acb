package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// Postgres writes a batch as one JSON parameter expanded by
// json_populate_recordset against the table's own row type: the server
// parses every number from its literal text (exact bigint and numeric), and a
// value that does not fit its column is the server's type error.
type Postgres struct {
	pool *pgxpool.Pool
}

// OpenPostgres connects to dsn (a URL or key=value string).
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return &Postgres{pool: pool}, nil
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
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+WatermarkTable+` (view_name text NOT NULL, row_key text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (view_name, row_key)) WITH (fillfactor = 70)`); err != nil {
		return fmt.Errorf("create watermark table: %w", err)
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
	if _, err := tx.Exec(ctx, `DELETE FROM `+WatermarkTable+` WHERE view_name = $1`, view); err != nil {
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
	return &pgTx{tx: tx}, nil
}

// pgTx queues its writes and sends them in one pipeline before COMMIT, so a
// batch costs BEGIN, the watermark read and one round trip of writes.
type pgTx struct {
	tx     pgx.Tx
	writes pgx.Batch
}

func (t *pgTx) queue(sql string, args ...any) { t.writes.Queue(sql, args...) }

func (t *pgTx) Commit(ctx context.Context) error {
	if t.writes.Len() > 0 {
		if err := t.tx.SendBatch(ctx, &t.writes).Close(); err != nil {
			_ = t.tx.Rollback(ctx)
			return err
		}
	}
	return t.tx.Commit(ctx)
}

func (t *pgTx) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

func (t *pgTx) Watermarks(ctx context.Context, view string, keys []string) (map[string]uint64, error) {
	rows, err := t.tx.Query(ctx, `SELECT row_key, seq FROM `+WatermarkTable+` WHERE view_name = $1 AND row_key = ANY($2)`, view, keys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]uint64, len(keys))
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

func (t *pgTx) SetWatermarks(ctx context.Context, view string, marks map[string]uint64) error {
	keys := make([]string, 0, len(marks))
	seqs := make([]int64, 0, len(marks))
	for k, s := range marks {
		keys = append(keys, k)
		seqs = append(seqs, int64(s))
	}
	t.queue(`INSERT INTO `+WatermarkTable+` AS w (view_name, row_key, seq)
SELECT $1, k, s FROM unnest($2::text[], $3::bigint[]) AS u(k, s)
ON CONFLICT (view_name, row_key) DO UPDATE SET seq = GREATEST(w.seq, EXCLUDED.seq)`, view, keys, seqs)
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
	doc, err := json.Marshal(rows)
	if err != nil {
		return err
	}
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
	t.queue(fmt.Sprintf(`INSERT INTO %s (%s) SELECT %s FROM json_populate_recordset(NULL::%s, $1::json) ON CONFLICT (%s) %s`,
		pgQuote(table), list, list, pgQuote(table), pgList(pk), conflict), string(doc))
	return nil
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
