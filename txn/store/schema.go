package store

import (
	"fmt"
	"regexp"

	"github.com/rosenmesh/rosen/txn/placeholder"
)

// dialect is what differs between the SQL engines the store runs on.
type dialect struct {
	name       string
	blob       string
	forShare   string // row lock that lets other readers in
	forUpdate  string
	skipLocked string
	dollar     bool // $1 placeholders instead of ?
	// branchOpts follow the branch table's definition: on PostgreSQL, room
	// left in each page so that phase two's outcome (no indexed column
	// changes) is a heap-only update that writes no index entry.
	branchOpts string
}

var (
	postgresDialect = dialect{name: "postgres", blob: "BYTEA", forShare: " FOR SHARE", forUpdate: " FOR UPDATE", skipLocked: " FOR UPDATE SKIP LOCKED", dollar: true, branchOpts: " WITH (fillfactor = 80)"}
	sqliteDialect   = dialect{name: "sqlite", blob: "BLOB"}
)

// rebind turns ? placeholders into $n for PostgreSQL.
func (d dialect) rebind(q string) string {
	if !d.dollar {
		return q
	}
	return placeholder.Dollar(q)
}

var prefixRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)

// tables names the two tables; a prefix lets tests and tenants share a database.
type tables struct{ txn, branch string }

func newTables(prefix string) (tables, error) {
	if prefix == "" {
		prefix = "rosen"
	}
	if !prefixRe.MatchString(prefix) {
		return tables{}, fmt.Errorf("store: table prefix %q: want [a-z_][a-z0-9_]*", prefix)
	}
	return tables{txn: prefix + "_txn", branch: prefix + "_txn_branch"}, nil
}

// Times are stored as Unix microseconds (BIGINT) so that both engines compare them the same way.
func (d dialect) schema(t tables) []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + t.txn + ` (
			id TEXT PRIMARY KEY,
			state TEXT NOT NULL,
			stuck_phase TEXT NOT NULL DEFAULT '',
			reason TEXT NOT NULL DEFAULT '',
			policy TEXT NOT NULL,
			headers TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			updated_at BIGINT NOT NULL,
			deadline BIGINT NOT NULL,
			finished_at BIGINT NOT NULL DEFAULT 0,
			next_due BIGINT NOT NULL,
			owner TEXT NOT NULL DEFAULT '',
			lease_until BIGINT NOT NULL DEFAULT 0,
			attempts INTEGER NOT NULL DEFAULT 0,
			last_error TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX IF NOT EXISTS ` + t.txn + `_due ON ` + t.txn + ` (next_due) WHERE state IN ('trying','confirming','cancelling')`,
		`CREATE INDEX IF NOT EXISTS ` + t.txn + `_created ON ` + t.txn + ` (created_at)`,
		`CREATE TABLE IF NOT EXISTS ` + t.branch + ` (
			txn_id TEXT NOT NULL,
			branch_id TEXT NOT NULL,
			seq BIGINT NOT NULL, -- registration time (µs): branches are called and shown in this order
			confirm_action ` + d.blob + ` NOT NULL,
			cancel_action ` + d.blob + ` NOT NULL,
			state TEXT NOT NULL,
			attempts INTEGER NOT NULL DEFAULT 0,
			last_error TEXT NOT NULL DEFAULT '',
			updated_at BIGINT NOT NULL,
			PRIMARY KEY (txn_id, branch_id)
		)` + d.branchOpts,
	}
}
