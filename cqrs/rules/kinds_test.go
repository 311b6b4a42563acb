package rules

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// An integer column took 19.5 and true on MySQL and SQLite, rounded or
// converted onto another row (19.5 onto 20, true onto 1); a double column
// took 1e400 as Infinity on PostgreSQL. Each is now the event's error.
func TestColumnTypesCheckValues(t *testing.T) {
	r := loadOne(t, `{"rules":[{"event":"u","table":"t","createTable":true,"mapping":[
	  {"source":"id","target":"id","primary":true,"type":"bigint"},{"source":"n","target":"n","type":"int"},
	  {"source":"d","target":"d","type":"double"},{"source":"m","target":"m","type":"numeric(10,2)"},
	  {"source":"s","target":"s","type":"text"},{"expr":"has(payload.e) ? payload.e : 0","target":"e","type":"integer"}]}]}`)
	bad := map[string]string{
		`{"id":19.5}`:              "column id: 19.5 is not an integer",
		`{"id":true}`:              "column id: true is not an integer",
		`{"id":"7a"}`:              `column id: "7a" is not an integer`,
		`{"id":1.5e0}`:             "column id: 1.5e0 is not an integer",
		`{"id":1e-3}`:              "column id: 1e-3 is not an integer",
		`{"id":1e400}`:             "column id: 1e400 is out of range for an integer column",
		`{"id":1,"n":1.7}`:         "column n: 1.7 is not an integer",
		`{"id":1,"n":false}`:       "column n: false is not an integer",
		`{"id":1,"n":[1]}`:         "column n: a JSON array is not an integer",
		`{"id":1,"d":1e400}`:       "column d: 1e400 is beyond a double",
		`{"id":1,"d":-1e400}`:      "column d: -1e400 is beyond a double",
		`{"id":1,"d":"NaN"}`:       `column d: "NaN": NaN/Inf`,
		`{"id":1,"d":"-Infinity"}`: `column d: "-Infinity": NaN/Inf`,
		`{"id":1,"d":true}`:        "column d: true is not a number",
		`{"id":1,"m":"Infinity"}`:  `column m: "Infinity": NaN/Inf`,
		`{"id":1,"e":2.5}`:         "column e: 2.5 is not an integer",
	}
	for payload, want := range bad {
		_, err := r.Project(mustEvent(t, `{"type":"u","payload":`+payload+`}`))
		if !errors.Is(err, ErrValue) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", payload, err, want)
		}
	}
	good := []struct{ payload, col, want string }{
		{`{"id":20}`, "id", "20"},
		{`{"id":20.0}`, "id", "20"},
		{`{"id":2e1}`, "id", "20"},
		{`{"id":2000E-2}`, "id", "20"},
		{`{"id":-0}`, "id", "0"},
		{`{"id":0.0e99999}`, "id", "0"},
		{`{"id":-12.50e1}`, "id", "-125"},
		{`{"id":9223372036854775808}`, "id", "9223372036854775808"}, // the database checks the range
		{`{"id":1,"d":1e308}`, "d", "1e308"},
		{`{"id":1,"d":1e-400}`, "d", "1e-400"},
		{`{"id":1,"m":0.1}`, "m", "0.1"},
		{`{"id":1,"e":3}`, "e", "3"},
		{`{"id":1,"e":3.0}`, "e", "3"},
	}
	for _, c := range good {
		row, err := r.Project(mustEvent(t, `{"type":"u","payload":`+c.payload+`}`))
		if err != nil || row.Values[c.col] != json.Number(c.want) {
			t.Errorf("%s: %s = %#v, %v; want %s", c.payload, c.col, row.Values[c.col], err, c.want)
		}
		if c.col == "id" && row.Key != c.want {
			t.Errorf("%s: key %q, want %q", c.payload, row.Key, c.want)
		}
	}
	for payload, want := range map[string]any{`{"id":"42"}`: "42", `{"id":1,"s":true}`: true, `{"id":1,"d":"1.5"}`: "1.5", `{"id":1,"n":null}`: nil} {
		row, err := r.Project(mustEvent(t, `{"type":"u","payload":`+payload+`}`))
		if err != nil {
			t.Errorf("%s: %v", payload, err)
			continue
		}
		for _, v := range row.Values {
			if v == want {
				goto ok
			}
		}
		t.Errorf("%s: values %#v lack %#v", payload, row.Values, want)
	ok:
	}
}

// A rule without types takes them from the rule that declares its table's
// columns, so an update or delete rule checks its key too (a delete of
// {"id":true} deleted row 1 on MySQL).
func TestColumnTypesAreSharedByTheTablesRules(t *testing.T) {
	dir := t.TempDir()
	rf := write(t, dir, "rules.json", `{"rules":[
	  {"event":"c","table":"t","createTable":true,"mapping":[{"source":"id","target":"id","primary":true,"type":"bigint"},{"source":"n","target":"n","type":"bigint"}]},
	  {"event":"u","table":"t","method":"update","mapping":[{"source":"id","target":"id","primary":true},{"source":"n","target":"N"}]},
	  {"event":"d","table":"t","method":"delete","mapping":[{"source":"id","target":"id","primary":true}]},
	  {"event":"o","table":"other","mapping":[{"source":"id","target":"id","primary":true}]}]}`)
	df := write(t, dir, "databases.json", goodDBs)
	ef := write(t, dir, "exporter.json", goodExps)
	cfg, err := Load(Files{Rules: []string{rf}, Databases: []string{df}, Exporters: []string{ef}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rule          int
		payload, want string
	}{
		{1, `{"id":19.5}`, "column id: 19.5 is not an integer"},
		{1, `{"id":1,"n":1.7}`, "column N: 1.7 is not an integer"},
		{2, `{"id":true}`, "column id: true is not an integer"},
	} {
		r := cfg.Rules[c.rule]
		_, err := r.Project(mustEvent(t, `{"type":"`+r.Event+`","payload":`+c.payload+`}`))
		if !errors.Is(err, ErrValue) || err.Error() != c.want {
			t.Errorf("rule %d %s: err = %v, want %q", c.rule, c.payload, err, c.want)
		}
	}
	if _, err := cfg.Rules[3].Project(mustEvent(t, `{"type":"o","payload":{"id":19.5}}`)); err != nil {
		t.Errorf("a column of another table got a type: %v", err)
	}
}
