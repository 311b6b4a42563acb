package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx" for database/sql users of this package (tests, barrier callers)
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// Options choose the tables a store uses.
type Options struct {
	// Prefix of the table names (default "rosen": rosen_txn, rosen_txn_branch).
	Prefix string
	// MaxConns bounds the PostgreSQL connection pool (default 32).
	MaxConns int
	// CommitWorkers is how many group commits may be in flight at once on
	// PostgreSQL (default 1: fewer, larger batches cost PostgreSQL and the
	// coordinator less CPU).
	CommitWorkers int
}

// OpenSQLite opens (and creates) the store in the SQLite file at path. It is
// for one coordinator process: writes are serialized on one connection, and
// every commit is synced to disk (WAL, synchronous=FULL).
func OpenSQLite(ctx context.Context, path string, opts Options) (Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("store: sqlite folder: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	s, err := newSQLStore(ctx, db, sqliteDialect, opts.Prefix)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// OpenPostgres opens the store in the PostgreSQL database at dsn (a URL or
// key=value string). Any number of coordinators may share it.
func OpenPostgres(ctx context.Context, dsn string, opts Options) (Store, error) {
	s, err := openPostgres(ctx, dsn, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}
