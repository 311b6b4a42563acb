package sink

import (
	"regexp"
	"strings"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

var numericRE = regexp.MustCompile(`^numeric(\(\d+,\d+\))$`)

// columnType maps a rule's portable column type to the dialect's. SQLite
// keeps decimals and timestamps as TEXT so their digits stay exact.
func columnType(dialect, typ string, primary bool) string {
	t := strings.ToLower(typ)
	if m := numericRE.FindStringSubmatch(t); m != nil {
		switch dialect {
		case rules.DBPostgres:
			return "numeric" + m[1]
		case rules.DBMySQL:
			return "DECIMAL" + m[1]
		default:
			return "TEXT"
		}
	}
	table := map[string][3]string{ // postgres, mysql, sqlite
		"string":    {"text", "VARCHAR(255)", "TEXT"},
		"text":      {"text", "LONGTEXT", "TEXT"},
		"int":       {"integer", "INT", "INTEGER"},
		"integer":   {"integer", "INT", "INTEGER"},
		"bigint":    {"bigint", "BIGINT", "INTEGER"},
		"decimal":   {"numeric", "DECIMAL(65,30)", "TEXT"},
		"numeric":   {"numeric", "DECIMAL(65,30)", "TEXT"},
		"boolean":   {"boolean", "BOOLEAN", "INTEGER"},
		"bool":      {"boolean", "BOOLEAN", "INTEGER"},
		"float":     {"double precision", "DOUBLE", "REAL"},
		"double":    {"double precision", "DOUBLE", "REAL"},
		"timestamp": {"timestamptz", "DATETIME(6)", "TEXT"},
		"json":      {"jsonb", "JSON", "TEXT"},
	}
	row := table[t]
	switch dialect {
	case rules.DBPostgres:
		return row[0]
	case rules.DBMySQL:
		if primary && row[1] == "LONGTEXT" {
			return "VARCHAR(255)"
		}
		return row[1]
	}
	return row[2]
}

func createTableSQL(dialect string, r *rules.Rule) string {
	quote := pgQuote
	if dialect == rules.DBMySQL {
		quote = myQuote
	}
	var cols []string
	for _, m := range r.Mapping {
		c := quote(m.Target) + " " + columnType(dialect, m.Type, m.Primary)
		if m.Primary {
			c += " NOT NULL"
		}
		cols = append(cols, c)
	}
	var pk []string
	for _, c := range r.PrimaryColumns() {
		pk = append(pk, quote(c))
	}
	cols = append(cols, "PRIMARY KEY ("+strings.Join(pk, ", ")+")")
	ddl := "CREATE TABLE IF NOT EXISTS " + quote(r.Table) + " (" + strings.Join(cols, ", ") + ")"
	if dialect == rules.DBSQLite {
		ddl += " STRICT" // a value of the wrong type is an error, as in the other databases
	}
	return ddl
}

func myQuote(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
