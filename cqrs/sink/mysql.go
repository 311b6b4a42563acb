package sink

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// OpenMySQL opens MySQL/MariaDB. Values travel as exact text
// (interpolateParams keeps it one round trip per statement); the server's
// strict mode turns a value that does not fit its column into an error.
func OpenMySQL(ctx context.Context, dsn string) (*SQLStore, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cfg.InterpolateParams = true
	cfg.ParseTime = true
	cfg.MultiStatements = false
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
	cfg.Params["time_zone"] = "'+00:00'"
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	db.SetMaxOpenConns(8)
	s := &SQLStore{db: db, d: sqlDialect{
		name:  rules.DBMySQL,
		quote: myQuote,
		upsert: func(pk, set []string) string {
			// MySQL takes a conflict on any unique key for a duplicate and
			// would merge the row into another one. The first assignment
			// makes that an error (NULL into the primary key) instead.
			same := make([]string, len(pk))
			for i, c := range pk {
				same[i] = c + " <=> VALUES(" + c + ")"
			}
			parts := []string{pk[0] + " = IF(" + strings.Join(same, " AND ") + ", " + pk[0] + ", NULL)"}
			for _, c := range set {
				parts = append(parts, c+" = VALUES("+c+")")
			}
			return "ON DUPLICATE KEY UPDATE " + strings.Join(parts, ", ")
		},
		offUpsert:  "ON DUPLICATE KEY UPDATE seq = GREATEST(seq, VALUES(seq))",
		offDDL:     "CREATE TABLE IF NOT EXISTS " + OffsetTable + " (view_name VARCHAR(191) NOT NULL, lane VARCHAR(191) NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (view_name, lane)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
		guard:      "SELECT seq FROM " + OffsetTable + " WHERE view_name = ? AND lane = '" + guardLane + "' LOCK IN SHARE MODE",
		value:      mysqlValue,
		permanent:  mysqlPermanent,
		maxParams:  60_000,
		intColumns: mysqlIntColumns,
	}}
	return s, nil
}

func mysqlValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, bool:
		return x, nil
	case json.Number:
		return x.String(), nil
	}
	return jsonText(v)
}

// Transient MySQL errors: connection limits, lock waits, deadlocks, shutdown, read-only.
var mysqlTransient = map[uint16]bool{1040: true, 1053: true, 1205: true, 1213: true, 1290: true, 1317: true, 1927: true, 2006: true, 2013: true}

// ErrUniqueConflict is MySQL's conflict on a unique key other than the primary key.
var ErrUniqueConflict = errors.New("sink: conflict on a unique key other than the primary key")

func mysqlExplain(err error, pk string) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1048 && strings.Contains(me.Message, "'"+pk+"'") {
		return fmt.Errorf("%w: %w", ErrUniqueConflict, err)
	}
	return err
}

// mysqlIntColumns are the table's integer columns (lower case: MySQL's
// column names are not case-sensitive); TINYINT(1) is BOOLEAN (true and
// false are its values) and is left out.
func mysqlIntColumns(ctx context.Context, db *sql.DB, table string) (map[string]bool, error) {
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ints := map[string]bool{}
	for rows.Next() {
		var name, dataType, colType string
		if err := rows.Scan(&name, &dataType, &colType); err != nil {
			return nil, err
		}
		switch strings.ToLower(dataType) {
		case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
			ints[strings.ToLower(name)] = !strings.HasPrefix(strings.ToLower(colType), "tinyint(1)")
		}
	}
	return ints, rows.Err()
}

func mysqlPermanent(err error) bool {
	if errors.Is(err, rules.ErrValue) {
		return true // refused before the server saw it: the row's fault
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return !mysqlTransient[me.Number]
	}
	return false
}
