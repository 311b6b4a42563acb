package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosenmesh/rosen/internal/testenv"
)

// seedDir is the Gravity seed's config examples (../shared/samples from the repo root).
func seedDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "samples", "gravity-seed")
	if _, err := os.Stat(dir); err != nil {
		if testenv.CI() {
			t.Fatalf("the seed samples are required under CI=true: %v", err)
		}
		t.Skipf("seed samples absent: %v", err)
	}
	return dir
}

func TestLoadSeed(t *testing.T) {
	dir := seedDir(t)
	cfg, err := Load(Files{
		Rules:     []string{filepath.Join(dir, "rules.json"), filepath.Join(dir, "rules-multi-db.json"), filepath.Join(dir, "rules-exporters.json")},
		Databases: []string{filepath.Join(dir, "databases.json")},
		Exporters: []string{filepath.Join(dir, "exporter.json")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != 2 {
		for _, r := range cfg.Rules {
			t.Logf("%s: %s → %s.%s %v", r.Where(), r.Event, r.Database, r.Table, r.Exporter)
		}
		t.Fatalf("got %d rules, want userCreated→users in db1 and db2", len(cfg.Rules))
	}
	byDB := map[string]*Rule{}
	for _, r := range cfg.Rules {
		byDB[r.Database] = r
		if r.Event != "userCreated" || r.Table != "users" || r.Method != MethodUpdate {
			t.Errorf("rule %+v", r)
		}
		if strings.Join(r.Columns(), ",") != "id,col_name,col_email" || strings.Join(r.PrimaryColumns(), ",") != "id" {
			t.Errorf("columns %v primary %v", r.Columns(), r.PrimaryColumns())
		}
	}
	if got := strings.Join(byDB["db1"].Exporter, ","); got != "exporter1,exporter2" {
		t.Errorf("db1 exporters = %q", got)
	}
	if len(byDB["db2"].Exporter) != 0 {
		t.Errorf("db2 exporters = %v", byDB["db2"].Exporter)
	}
	if cfg.Databases["db2"].Type != DBMySQL || cfg.Exporters["exporter2"].URL != "http://127.0.0.1:18080/api" {
		t.Errorf("databases/exporters: %+v %+v", cfg.Databases, cfg.Exporters)
	}
}

func TestLoadSeedAloneNeedsDatabase(t *testing.T) {
	dir := seedDir(t)
	// rules.json alone has no database and the seed defines two: that is an error with its path.
	_, err := Load(Files{Rules: []string{filepath.Join(dir, "rules.json")}, Databases: []string{filepath.Join(dir, "databases.json")}})
	var ce *ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, ErrMissing) || ce.Path != "$.rules[0].database" {
		t.Fatalf("err = %v", err)
	}
}

const goodDBs = `{"databases":{"db1":{"type":"sqlite","dbName":"x.db"}}}`
const goodExps = `{"exporter":{"e1":{"type":"restful_api","url":"http://127.0.0.1:1/x"}}}`

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadErrorsNameFileAndPath(t *testing.T) {
	cases := []struct {
		name, rules, dbs string
		want             error
		path             string
	}{
		{"unknown rule key", `{"rules":[{"event":"a","table":"t","mapping":[{"source":"id","target":"id","primary":true}],"tabel":"x"}]}`, goodDBs, ErrUnknownKey, "$.rules[0].tabel"},
		{"unknown mapping key", `{"rules":[{"event":"a","table":"t","mapping":[{"source":"id","target":"id","primary":true},{"sourc":"n","target":"n"}]}]}`, goodDBs, ErrUnknownKey, "$.rules[0].mapping[1].sourc"},
		{"no primary", `{"rules":[{"event":"a","table":"t","mapping":[{"source":"id","target":"id"}]}]}`, goodDBs, ErrMissing, "$.rules[0].mapping"},
		{"unknown database", `{"rules":[{"event":"a","table":"t","database":"nope","mapping":[{"source":"id","target":"id","primary":true}]}]}`, goodDBs, ErrUnknownRef, "$.rules[0].database"},
		{"unknown exporter", `{"rules":[{"event":"a","table":"t","exporter":["e1","e9"],"mapping":[{"source":"id","target":"id","primary":true}]}]}`, goodDBs, ErrUnknownRef, "$.rules[0].exporter[1]"},
		{"bad method", `{"rules":[{"event":"a","table":"t","method":"merge","mapping":[{"source":"id","target":"id","primary":true}]}]}`, goodDBs, ErrInvalid, "$.rules[0].method"},
		{"bad table name", `{"rules":[{"event":"a","table":"t; drop","mapping":[{"source":"id","target":"id","primary":true}]}]}`, goodDBs, ErrInvalid, "$.rules[0].table"},
		{"bad filter", `{"rules":[{"event":"a","table":"t","filter":"payload.x >","mapping":[{"source":"id","target":"id","primary":true}]}]}`, goodDBs, ErrInvalid, "$.rules[0].filter"},
		{"filter not bool", `{"rules":[{"event":"a","table":"t","filter":"'yes'","mapping":[{"source":"id","target":"id","primary":true}]}]}`, goodDBs, ErrInvalid, "$.rules[0].filter"},
		{"wrong type", `{"rules":[{"event":"a","table":"t","mapping":[{"source":"id","target":"id","primary":"yes"}]}]}`, goodDBs, ErrInvalid, "$.rules[0].mapping[0].primary"},
		{"wrong type, later rule", `{"rules":[{"event":"a","table":"t","mapping":[{"source":"id","target":"id","primary":true}]},{"event":"b","table":"t","createTable":"yes","mapping":[{"source":"id","target":"id","primary":true}]}]}`, goodDBs, ErrInvalid, "$.rules[1].createTable"},
		{"mapping not an array", `{"rules":[{"event":"a","table":"t","mapping":{"source":"id"}}]}`, goodDBs, ErrInvalid, "$.rules[0].mapping"},
		{"port not an integer", `{"rules":[]}`, `{"databases":{"d":{"type":"postgres","host":"h","dbName":"x","port":54.32}}}`, ErrInvalid, "$.databases.d.port"},
		{"duplicate rules key", `{"rules":[{"event":"a","table":"t","mapping":[{"source":"id","target":"id","primary":true}]}],"rules":[]}`, goodDBs, ErrDuplicateKey, "$.rules"},
		{"duplicate table key", `{"rules":[{"event":"a","table":"t","table":"u","mapping":[{"source":"id","target":"id","primary":true}]}]}`, goodDBs, ErrDuplicateKey, "$.rules[0].table"},
		{"duplicate mapping key", `{"rules":[{"event":"a","table":"t","mapping":[{"source":"id","target":"id","primary":true},{"source":"n","target":"n","source":"m"}]}]}`, goodDBs, ErrDuplicateKey, "$.rules[0].mapping[1].source"},
		{"duplicate database", `{"rules":[]}`, `{"databases":{"d":{"type":"sqlite","dbName":"x"},"d":{"type":"sqlite","dbName":"y"}}}`, ErrDuplicateKey, "$.databases.d"},
		{"duplicate column", `{"rules":[{"event":"a","table":"t","mapping":[{"source":"id","target":"id","primary":true},{"source":"x","target":"ID"}]}]}`, goodDBs, ErrInvalid, "$.rules[0].mapping[1].target"},
		{"createTable without type", `{"rules":[{"event":"a","table":"t","createTable":true,"mapping":[{"source":"id","target":"id","primary":true}]}]}`, goodDBs, ErrMissing, "$.rules[0].mapping[0].type"},
		{"syntax", `{"rules":[`, goodDBs, ErrSyntax, "$"},
		{"unknown db type", `{"rules":[]}`, `{"databases":{"d":{"type":"oracle"}}}`, ErrInvalid, "$.databases.d.type"},
		{"unknown db key", `{"rules":[]}`, `{"databases":{"d":{"type":"sqlite","dbName":"x","passwd":"x"}}}`, ErrUnknownKey, "$.databases.d.passwd"},
		{"view with two keys", `{"rules":[{"event":"a","table":"t","mapping":[{"source":"id","target":"id","primary":true}]},{"event":"b","table":"t","mapping":[{"source":"id","target":"uid","primary":true}]}]}`, goodDBs, ErrInvalid, "$.rules[1]"},
		{"orphan fragment", `{"rules":[{"event":"a","database":"db1"}]}`, goodDBs, ErrMissing, "$.rules[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			rf := write(t, dir, "rules.json", c.rules)
			df := write(t, dir, "databases.json", c.dbs)
			ef := write(t, dir, "exporter.json", goodExps)
			_, err := Load(Files{Rules: []string{rf}, Databases: []string{df}, Exporters: []string{ef}})
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if ce.Path != c.path || (ce.File != rf && ce.File != df) {
				t.Fatalf("err at %s %s, want path %s", ce.File, ce.Path, c.path)
			}
		})
	}
}

func TestLoadYAMLDir(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "databases.yaml", "databases:\n  main:\n    type: sqlite\n    dbName: views.db\n")
	write(t, dir, "rules.yaml", `rules:
- event: orderPlaced
  table: orders
  filter: payload.total > 10
  mapping:
  - {source: order.id, target: id, primary: true}
  - {source: order.customer.id, target: customer_id}
  - {expr: "payload.note.upperAscii()", target: note}
`)
	cfg, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != 1 || cfg.Rules[0].Database != "main" || cfg.Rules[0].Method != MethodUpsert {
		t.Fatalf("rules = %+v", cfg.Rules)
	}
	write(t, dir, "rules.yaml", "rules:\n- event: x\n  table: t\n  mapping:\n  - {source: id, target: id, primary: true}\n- event: other\n  table: t\n  table: u\n  mapping:\n  - {source: id, target: id, primary: true}\n")
	_, err = LoadDir(dir)
	var dup *ConfigError
	if !errors.As(err, &dup) || !errors.Is(err, ErrDuplicateKey) || dup.Path != "$.rules[1].table" || !strings.Contains(err.Error(), "line 7 and again on line 8") {
		t.Fatalf("duplicate YAML key: err = %v", err)
	}
	write(t, dir, "rules.yaml", "rules:\n- event: x\n  table: t\n  mapping:\n  - {source: id, target: id, primary: true}\nrules: []\n")
	if _, err = LoadDir(dir); !errors.As(err, &dup) || !errors.Is(err, ErrDuplicateKey) || dup.Path != "$.rules" {
		t.Fatalf("duplicate YAML key: err = %v", err)
	}
	write(t, dir, "rules.yaml", "rules:\n- event: x\n  table: t\n  mapping:\n  - {source: id, target: id, primary: true, colour: red}\n")
	_, err = LoadDir(dir)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Path != "$.rules[0].mapping[0].colour" || !strings.HasSuffix(ce.File, "rules.yaml") {
		t.Fatalf("err = %v", err)
	}
}

// Two rules of one event, database and table that differ were merged into
// the first, silently losing the second's method and filter; they are two
// rules now, in file order. Rules that are the same but for their exporters
// (the seed's fragments) are still one rule with the union of exporters.
func TestRulesOfOneEventAndTableStayApart(t *testing.T) {
	dir := t.TempDir()
	rf := write(t, dir, "rules.json", `{"rules":[
	  {"event":"s","table":"t","exporter":["e1"],"filter":"payload.active","mapping":[{"source":"id","target":"id","primary":true}]},
	  {"event":"s","table":"t","method":"delete","filter":"!payload.active","mapping":[{"source":"id","target":"id","primary":true}]},
	  {"event":"s","table":"t","method":"upsert","exporter":["e2"],"filter":"payload.active","mapping":[{"source":"id","target":"id","primary":true}]}]}`)
	df := write(t, dir, "databases.json", goodDBs)
	ef := write(t, dir, "exporter.json", `{"exporter":{"e1":{"type":"restful_api","url":"http://127.0.0.1:1/x"},"e2":{"type":"restful_api","url":"http://127.0.0.1:1/y"}}}`)
	cfg, err := Load(Files{Rules: []string{rf}, Databases: []string{df}, Exporters: []string{ef}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != 2 || cfg.Rules[0].Method != MethodUpsert || cfg.Rules[1].Method != MethodDelete || cfg.Rules[1].Filter != "!payload.active" {
		t.Fatalf("rules = %+v", cfg.Rules)
	}
	if strings.Join(cfg.Rules[0].Exporter, ",") != "e1,e2" || cfg.Rules[1].Where() != rf+": $.rules[1]" {
		t.Fatalf("exporters %v, second rule from %s", cfg.Rules[0].Exporter, cfg.Rules[1].Where())
	}
}
