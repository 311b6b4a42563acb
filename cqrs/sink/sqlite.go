package sink

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"modernc.org/sqlite"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// OpenSQLite opens (creating) a SQLite file in WAL mode. Integers that fit
// int64 are bound as integers; other numbers as their exact text (declare
// decimal columns TEXT, as createTable does, to keep every digit).
func OpenSQLite(ctx context.Context, path string) (*SQLStore, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	db.SetMaxOpenConns(1)
	s := &SQLStore{db: db, d: sqlDialect{
		name:  rules.DBSQLite,
		quote: pgQuote,
		upsert: func(pk, set []string) string {
			if len(set) == 0 {
				return "ON CONFLICT DO NOTHING"
			}
			parts := make([]string, len(set))
			for i, c := range set {
				parts[i] = c + " = excluded." + c
			}
			return "ON CONFLICT (" + strings.Join(pk, ", ") + ") DO UPDATE SET " + strings.Join(parts, ", ")
		},
		offUpsert: "ON CONFLICT (view_name, lane) DO UPDATE SET seq = max(seq, excluded.seq)",
		offDDL:    "CREATE TABLE IF NOT EXISTS " + OffsetTable + " (view_name TEXT NOT NULL, lane TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (view_name, lane))",
		value:     sqliteValue,
		permanent: sqlitePermanent,
		maxParams: 30_000,
	}}
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("%w: sqlite %s: %w", ErrUnavailable, path, err)
	}
	return s, nil
}

func sqliteValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, string:
		return x, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		return x.String(), nil
	}
	return jsonText(v)
}

// SQLite result codes that are transient: BUSY, LOCKED, IOERR, FULL, CANTOPEN.
var sqliteTransient = map[int]bool{5: true, 6: true, 10: true, 13: true, 14: true}

func sqlitePermanent(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return !sqliteTransient[se.Code()&0xff]
	}
	return false
}
