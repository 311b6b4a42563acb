// Package rules loads and validates the CQRS configuration in the Gravity
// seed's shapes — rules.json, databases.json, exporter.json (or the same as
// YAML) — and projects events into rows: which table, which key, which
// columns, after a CEL filter and CEL column expressions.
package rules

import "errors"

// Sentinel errors; every load error wraps one of them inside a *ConfigError
// that names the file and the JSON path.
var (
	ErrUnknownKey = errors.New("rules: unknown key")
	ErrMissing    = errors.New("rules: required field missing")
	ErrInvalid    = errors.New("rules: invalid value")
	ErrUnknownRef = errors.New("rules: unknown reference")
	ErrSyntax     = errors.New("rules: syntax error")
	// ErrDuplicateKey is a key given twice in one object or mapping.
	ErrDuplicateKey = errors.New("rules: duplicate key")
)

// Methods a rule may use.
const (
	MethodInsert = "insert" // write the whole row (absent fields become NULL)
	MethodUpsert = "upsert" // same as insert: the row is replaced whole
	MethodUpdate = "update" // merge the present fields; creates the row if it is missing
	MethodDelete = "delete" // delete the row by primary key
)

// Database types.
const (
	DBPostgres = "postgres"
	DBMySQL    = "mysql"
	DBSQLite   = "sqlite"
)

// Exporter types.
const (
	ExpKafka = "kafka"
	ExpNATS  = "nats"
	ExpREST  = "restful_api"
)

// RulesFile is rules.json.
type RulesFile struct {
	Rules []Rule `json:"rules"`
}

// Rule maps one event type into one table of one database.
type Rule struct {
	// Name is the view's name (what `rosen cqrs replay --view` takes); it defaults to Table.
	Name     string    `json:"name,omitempty"`
	Event    string    `json:"event"`
	Table    string    `json:"table,omitempty"`
	Method   string    `json:"method,omitempty"`
	Database string    `json:"database,omitempty"`
	Exporter []string  `json:"exporter,omitempty"`
	Mapping  []Mapping `json:"mapping,omitempty"`
	// Filter is a CEL expression over `event` and `payload`; the rule applies when it is true.
	Filter string `json:"filter,omitempty"`
	// CreateTable creates the table (and its primary key) from the mapping's types when missing.
	CreateTable bool `json:"createTable,omitempty"`

	file  string
	index int
	prog  *programs
	kinds []colKind // per mapping: what its (or its table's) declared type accepts
}

// Mapping maps one source path (or CEL expression) to one column.
type Mapping struct {
	Source  string `json:"source,omitempty"` // dotted path into the payload: order.customer.id
	Expr    string `json:"expr,omitempty"`   // CEL expression instead of Source (a transform)
	Target  string `json:"target"`
	Primary bool   `json:"primary,omitempty"`
	// Type is the column type for createTable: string, text, int, bigint, decimal, numeric(p,s), boolean, float, timestamp, json.
	Type string `json:"type,omitempty"`
}

// DatabasesFile is databases.json.
type DatabasesFile struct {
	Databases map[string]Database `json:"databases"`
}

// Database is one sink database.
type Database struct {
	Type     string `json:"type"`
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	Secure   bool   `json:"secure,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	DBName   string `json:"dbName,omitempty"`
	// DSN overrides the fields above with a driver DSN (a file path for sqlite).
	DSN string `json:"dsn,omitempty"`
	// Schema is PostgreSQL's search_path for the rules' tables (optional).
	Schema string `json:"schema,omitempty"`
}

// ExportersFile is exporter.json.
type ExportersFile struct {
	Exporter map[string]Exporter `json:"exporter"`
}

// Exporter is one destination that committed projections are emitted to.
type Exporter struct {
	Type     string            `json:"type"`
	Host     string            `json:"host,omitempty"`
	Port     int               `json:"port,omitempty"`
	Secure   bool              `json:"secure,omitempty"`
	Username string            `json:"username,omitempty"`
	Password string            `json:"password,omitempty"`
	Topic    string            `json:"topic,omitempty"`   // kafka
	Subject  string            `json:"subject,omitempty"` // nats
	URL      string            `json:"url,omitempty"`     // restful_api, or nats://
	Headers  map[string]string `json:"headers,omitempty"` // restful_api
}

// Config is the whole, validated configuration.
type Config struct {
	Rules     []*Rule
	Databases map[string]Database
	Exporters map[string]Exporter
}

// ViewName is the rule's view: its Name, or its table.
func (r *Rule) ViewName() string {
	if r.Name != "" {
		return r.Name
	}
	return r.Table
}

// Where says which file and rule this came from (for logs and errors).
func (r *Rule) Where() string { return r.file + ": " + rulePath(r.index) }

// PrimaryColumns are the target columns of the primary-key mappings, in order.
func (r *Rule) PrimaryColumns() []string {
	var cols []string
	for _, m := range r.Mapping {
		if m.Primary {
			cols = append(cols, m.Target)
		}
	}
	return cols
}

// Columns are all target columns, in mapping order.
func (r *Rule) Columns() []string {
	cols := make([]string, len(r.Mapping))
	for i, m := range r.Mapping {
		cols[i] = m.Target
	}
	return cols
}
