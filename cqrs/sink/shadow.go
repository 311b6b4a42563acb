package sink

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// A replay rebuilds a view into a shadow table while live events keep
// flowing into the view, then swaps the shadow in under the view's guard:
//
//  1. PrepareShadow creates rosen_shadow_<table> like the table and fills it
//     from nothing, from the view's snapshot, or from a consistent copy of
//     the live view (offsets capped so that events from --from are applied again).
//  2. The caller folds the event store into it (view name <view>~replay, so its
//     offsets are its own) up to the store's end, without any lock.
//  3. SwapShadow takes the view's guard exclusively (live writers of the view
//     wait), lets the caller fold the few events stored since, renames the
//     shadow over the table and sets the view's offsets to what the shadow
//     holds, in one transaction (PostgreSQL) or under the held guard (MySQL,
//     whose RENAME commits by itself). Live writers then resume on the new
//     table and skip what it already holds.

// ShadowStart says what a shadow begins with.
type ShadowStart int

const (
	ShadowEmpty        ShadowStart = iota // rebuilt from the first event
	ShadowFromSnapshot                    // the view's last snapshot
	ShadowFromLive                        // a consistent copy of the live view
)

// ErrNoShadow is a store that cannot rebuild views in a shadow table (SQLite:
// one connection, so a replay there pauses the live consumers instead).
var ErrNoShadow = errors.New("sink: shadow rebuild needs PostgreSQL or MySQL")

// ShadowTable is the shadow of table; ShadowView names its offsets.
func ShadowTable(table string) string { return "rosen_shadow_" + table }
func ShadowView(view string) string   { return view + "~replay" }
func oldTable(table string) string    { return "rosen_old_" + table }

// Shadowable reports whether st rebuilds views in a shadow table.
func Shadowable(st Store) bool {
	switch s := st.(type) {
	case *Postgres:
		return true
	case *SQLStore:
		return s.d.name == rules.DBMySQL
	}
	return false
}

// PrepareShadow (re)creates the view's shadow table and its offsets. From a
// snapshot it returns the snapshot's sequence; from the live view the
// copied offsets are capped at limit (so every event after limit is folded
// in again, a per-lane suffix, which leaves each key as the full fold would).
func PrepareShadow(ctx context.Context, st Store, view, table string, start ShadowStart, limit uint64) (uint64, error) {
	quote, dialect := pgQuote, rules.DBPostgres
	if s, ok := st.(*SQLStore); ok {
		quote, dialect = myQuote, s.d.name
	}
	if !Shadowable(st) {
		return 0, ErrNoShadow
	}
	shadow, sv := quote(ShadowTable(table)), ShadowView(view)
	like := "CREATE TABLE " + shadow + " (LIKE " + quote(table) + " INCLUDING ALL)"
	if dialect == rules.DBMySQL {
		like = "CREATE TABLE " + shadow + " LIKE " + quote(table)
	}
	plain, run, err := snapAdapters(st)
	if err != nil {
		return 0, err
	}
	for _, q := range []string{"DROP TABLE IF EXISTS " + shadow, "DROP TABLE IF EXISTS " + quote(oldTable(table)), like} {
		if err := plain.exec(ctx, q); err != nil {
			return 0, fmt.Errorf("shadow of %s: %w", table, err)
		}
	}
	if start == ShadowFromSnapshot {
		if err := plain.prepare(ctx, view, table); err != nil {
			return 0, err
		}
	}
	var seq uint64
	err = run(ctx, func(d snapDB) error {
		if dialect == rules.DBMySQL && start == ShadowFromLive {
			// InnoDB's INSERT … SELECT reads the latest rows, not one
			// snapshot: hold the view's writers off for the copy.
			if err := d.exec(ctx, "SELECT seq FROM "+OffsetTable+" WHERE view_name = ? AND lane = ? FOR UPDATE", view, guardLane); err != nil {
				return err
			}
		}
		if err := d.exec(ctx, d.q("DELETE FROM "+OffsetTable+" WHERE view_name = ? AND lane <> ?"), sv, guardLane); err != nil {
			return err
		}
		switch start {
		case ShadowFromSnapshot:
			var err error
			if seq, err = d.seq(ctx, view); err != nil {
				return err
			}
			if err := d.exec(ctx, "INSERT INTO "+shadow+" SELECT * FROM "+quote(snapTable(view))); err != nil {
				return err
			}
			return d.exec(ctx, d.q("INSERT INTO "+OffsetTable+" (view_name, lane, seq) SELECT ?, lane, seq FROM "+snapMarks+" WHERE view_name = ? AND lane <> ?"), sv, view, guardLane)
		case ShadowFromLive:
			if err := d.exec(ctx, "INSERT INTO "+shadow+" SELECT * FROM "+quote(table)); err != nil {
				return err
			}
			return d.exec(ctx, d.q("INSERT INTO "+OffsetTable+" (view_name, lane, seq) SELECT ?, lane, LEAST(seq, ?) FROM "+OffsetTable+" WHERE view_name = ? AND lane <> ?"), sv, int64(limit), view, guardLane)
		}
		return nil
	})
	return seq, err
}

// SwapShadow holds the view's writers off, runs catchUp (which folds the
// rest of the event store into the shadow and returns the lane offsets the
// shadow now covers), renames the shadow over the table and gives the view
// the shadow's offsets. The old table is dropped afterwards.
func SwapShadow(ctx context.Context, st Store, view, table string, catchUp func(context.Context) (map[string]uint64, error)) error {
	var err error
	switch s := st.(type) {
	case *Postgres:
		err = s.swap(ctx, view, table, catchUp)
	case *SQLStore:
		if s.d.name != rules.DBMySQL {
			return ErrNoShadow
		}
		err = s.swapMySQL(ctx, view, table, catchUp)
	default:
		return ErrNoShadow
	}
	if err != nil {
		return err
	}
	plain, _, err := snapAdapters(st)
	if err != nil {
		return err
	}
	quote := pgQuote
	if _, ok := st.(*SQLStore); ok {
		quote = myQuote
	}
	// The old table may have dependents (a SQL view over it): then it stays.
	_ = plain.exec(ctx, "DROP TABLE IF EXISTS "+quote(oldTable(table)))
	return plain.exec(ctx, plain.q("DELETE FROM "+OffsetTable+" WHERE view_name = ?"), ShadowView(view))
}

// newOffsets merges the shadow's own offsets with what catchUp reports.
func newOffsets(shadow, caught map[string]uint64) ([]string, []int64) {
	merged := map[string]uint64{}
	for l, s := range shadow {
		merged[l] = s
	}
	for l, s := range caught {
		merged[l] = max(merged[l], s)
	}
	lanes := make([]string, 0, len(merged))
	seqs := make([]int64, 0, len(merged))
	for l, s := range merged {
		lanes = append(lanes, l)
		seqs = append(seqs, int64(s))
	}
	return lanes, seqs
}

func (p *Postgres) swap(ctx context.Context, view, table string, catchUp func(context.Context) (map[string]uint64, error)) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, pgGuardLock, view); err != nil {
		return fmt.Errorf("guard of view %s: %w", view, err)
	}
	caught, err := catchUp(ctx)
	if err != nil {
		return err
	}
	shadowOffs, err := pgOffsets(ctx, tx, ShadowView(view))
	if err != nil {
		return err
	}
	lanes, seqs := newOffsets(shadowOffs, caught)
	for _, q := range []string{
		"ALTER TABLE " + pgQuote(table) + " RENAME TO " + pgQuote(oldTable(table)),
		"ALTER TABLE " + pgQuote(ShadowTable(table)) + " RENAME TO " + pgQuote(table),
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("swap %s: %w", table, err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+OffsetTable+` (view_name, lane, seq) SELECT $1, l, s FROM unnest($2::text[], $3::bigint[]) AS u(l, s)
ON CONFLICT (view_name, lane) DO UPDATE SET seq = EXCLUDED.seq`, view, lanes, seqs); err != nil {
		return err
	}
	p.types.Delete(table)
	return tx.Commit(ctx)
}

func pgOffsets(ctx context.Context, tx pgx.Tx, view string) (map[string]uint64, error) {
	rows, err := tx.Query(ctx, `SELECT lane, seq FROM `+OffsetTable+` WHERE view_name = $1`, view)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var l string
		var s int64
		if err := rows.Scan(&l, &s); err != nil {
			return nil, err
		}
		out[l] = uint64(s)
	}
	return out, rows.Err()
}

func (s *SQLStore) swapMySQL(ctx context.Context, view, table string, catchUp func(context.Context) (map[string]uint64, error)) error {
	if err := s.ensureGuard(ctx, view); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var g int64
	if err := tx.QueryRowContext(ctx, "SELECT seq FROM "+OffsetTable+" WHERE view_name = ? AND lane = ? FOR UPDATE", view, guardLane).Scan(&g); err != nil {
		return fmt.Errorf("guard of view %s: %w", view, err)
	}
	caught, err := catchUp(ctx)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, "SELECT lane, seq FROM "+OffsetTable+" WHERE view_name = ? AND lane <> ?", ShadowView(view), guardLane)
	if err != nil {
		return err
	}
	shadowOffs := map[string]uint64{}
	for rows.Next() {
		var l string
		var n int64
		if err := rows.Scan(&l, &n); err != nil {
			rows.Close()
			return err
		}
		shadowOffs[l] = uint64(n)
	}
	rows.Close()
	lanes, seqs := newOffsets(shadowOffs, caught)
	for i := range lanes {
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+OffsetTable+" (view_name, lane, seq) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE seq = VALUES(seq)", view, lanes[i], seqs[i]); err != nil {
			return err
		}
	}
	// RENAME commits implicitly, so it runs on a connection of its own while
	// this transaction keeps the guard; the new offsets commit right after.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "RENAME TABLE "+myQuote(table)+" TO "+myQuote(oldTable(table))+", "+myQuote(ShadowTable(table))+" TO "+myQuote(table)); err != nil {
		return fmt.Errorf("swap %s: %w", table, err)
	}
	return tx.Commit()
}
