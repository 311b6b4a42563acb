package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosenmesh/rosen/cqrs/event"
	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/internal/testenv"
)

// stores opens each real database this machine has, with a table prefix of its own.
func stores(t *testing.T) map[string]Store {
	t.Helper()
	ctx := context.Background()
	out := map[string]Store{}
	pg, err := OpenPostgres(ctx, testenv.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	out[rules.DBPostgres] = pg
	my, err := OpenMySQL(ctx, testenv.MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	out[rules.DBMySQL] = my
	lite, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "views.db"))
	if err != nil {
		t.Fatal(err)
	}
	out[rules.DBSQLite] = lite
	t.Cleanup(func() {
		for _, s := range out {
			_ = s.Close()
		}
	})
	return out
}

// loadRules loads rules JSON (with %s for the table name) against one database "db".
func loadRules(t *testing.T, table, body string) []*rules.Rule {
	t.Helper()
	dir := t.TempDir()
	rf := filepath.Join(dir, "rules.json")
	df := filepath.Join(dir, "databases.json")
	if err := os.WriteFile(rf, []byte(strings.ReplaceAll(body, "TABLE", table)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(df, []byte(`{"databases":{"db":{"type":"sqlite","dbName":"x.db"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := rules.Load(rules.Files{Rules: []string{rf}, Databases: []string{df}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Rules
}

const userRules = `{"rules":[
 {"event":"userCreated","table":"TABLE","method":"insert","createTable":true,"mapping":[
   {"source":"id","target":"id","primary":true,"type":"bigint"},
   {"source":"name","target":"name","type":"text"},
   {"source":"email","target":"email","type":"string"},
   {"source":"big","target":"big","type":"bigint"},
   {"source":"a","target":"a","type":"numeric(20,10)"},
   {"source":"b","target":"b","type":"numeric(20,10)"},
   {"source":"flag","target":"flag","type":"boolean"}]},
 {"event":"userRenamed","table":"TABLE","method":"update","mapping":[
   {"source":"id","target":"id","primary":true},{"source":"name","target":"name"}]},
 {"event":"userDeleted","table":"TABLE","method":"delete","mapping":[{"source":"id","target":"id","primary":true}]}
]}`

type harness struct {
	t     *testing.T
	rules []*rules.Rule
	sink  *Sink
	table string
	seq   uint64
}

func newHarness(t *testing.T, dialect string, st Store) *harness {
	table := testenv.UniqueName("cqrs_users")
	rs := loadRules(t, table, userRules)
	if err := st.Prepare(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropTable(st, table) })
	return &harness{t: t, rules: rs, sink: &Sink{Name: dialect, Store: st}, table: table}
}

func dropTable(st Store, table string) {
	switch s := st.(type) {
	case *Postgres:
		_, _ = s.pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgQuote(table))
	case *SQLStore:
		_, _ = s.db.Exec("DROP TABLE IF EXISTS " + s.d.quote(table))
	}
}

// op builds the op for one event JSON with the next sequence number.
func (h *harness) op(js string) Op {
	h.t.Helper()
	ev, err := event.Decode([]byte(js))
	if err != nil {
		h.t.Fatal(err)
	}
	h.seq++
	for _, r := range h.rules {
		if ok, _ := r.Matches(ev); ok {
			row, err := r.Project(ev)
			if err != nil {
				h.t.Fatal(err)
			}
			return Op{Rule: r, Row: row, Seq: h.seq}
		}
	}
	h.t.Fatalf("no rule for %s", js)
	return Op{}
}

func (h *harness) query(st Store, q string) [][]string {
	h.t.Helper()
	q = strings.ReplaceAll(q, "TABLE", h.table)
	var out [][]string
	switch s := st.(type) {
	case *Postgres:
		rows, err := s.pool.Query(context.Background(), q)
		if err != nil {
			h.t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				h.t.Fatal(err)
			}
			var r []string
			for _, v := range vals {
				r = append(r, text(v))
			}
			out = append(out, r)
		}
	case *SQLStore:
		rows, err := s.db.Query(q)
		if err != nil {
			h.t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				h.t.Fatal(err)
			}
			var r []string
			for _, v := range vals {
				r = append(r, text(v))
			}
			out = append(out, r)
		}
	}
	return out
}

func text(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return string(x)
	case string:
		return x
	case fmt.Stringer:
		return x.String()
	}
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

func TestReorderingWithinBatchAndRedelivery(t *testing.T) {
	for dialect, st := range stores(t) {
		t.Run(dialect, func(t *testing.T) {
			h := newHarness(t, dialect, st)
			ops := []Op{
				h.op(`{"type":"userCreated","payload":{"id":2,"name":"two"}}`),
				h.op(`{"type":"userCreated","payload":{"id":1,"name":"one"}}`),
				h.op(`{"type":"userDeleted","payload":{"id":1}}`),
				h.op(`{"type":"userCreated","payload":{"id":1,"name":"one again"}}`),
				h.op(`{"type":"userRenamed","payload":{"id":2,"name":"two renamed"}}`),
			}
			shuffled := append([]Op(nil), ops...)
			rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			res, fails, err := h.sink.Apply(context.Background(), shuffled)
			if err != nil || len(fails) != 0 || res.Applied != 5 {
				t.Fatalf("apply: %+v %v %v", res, fails, err)
			}
			want := "1:one again|2:two renamed"
			if got := h.rows(st, "SELECT id, name FROM TABLE ORDER BY id"); got != want {
				t.Fatalf("rows = %s, want %s", got, want)
			}
			// Redelivery of everything, and a stale event alone: nothing changes.
			res, _, err = h.sink.Apply(context.Background(), ops)
			if err != nil || res.Skipped != 5 || res.Applied != 0 {
				t.Fatalf("redelivery: %+v %v", res, err)
			}
			res, _, _ = h.sink.Apply(context.Background(), ops[1:2])
			if got := h.rows(st, "SELECT id, name FROM TABLE ORDER BY id"); got != want || res.Skipped != 1 {
				t.Fatalf("after stale redelivery rows = %s (%+v)", got, res)
			}
			// Update merges: email survives a rename in a later batch.
			if _, _, err := h.sink.Apply(context.Background(), []Op{h.op(`{"type":"userCreated","payload":{"id":3,"name":"x","email":"x@example.com"}}`)}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := h.sink.Apply(context.Background(), []Op{h.op(`{"type":"userRenamed","payload":{"id":3,"name":"y"}}`)}); err != nil {
				t.Fatal(err)
			}
			if got := h.rows(st, "SELECT name, email FROM TABLE WHERE id = 3"); got != "y:x@example.com" {
				t.Fatalf("merged row = %s", got)
			}
		})
	}
}

func (h *harness) rows(st Store, q string) string {
	var parts []string
	for _, r := range h.query(st, q) {
		parts = append(parts, strings.Join(r, ":"))
	}
	return strings.Join(parts, "|")
}

func TestExactness(t *testing.T) {
	big := strings.Repeat("ü", 512*1024) // 1 MiB of UTF-8
	for dialect, st := range stores(t) {
		t.Run(dialect, func(t *testing.T) {
			h := newHarness(t, dialect, st)
			ops := []Op{
				h.op(`{"type":"userCreated","payload":{"id":9007199254740993,"name":"日本語 🚀 \"quoted\"","big":9007199254740993,"a":0.1,"b":0.2,"flag":false,"email":null}}`),
				h.op(`{"type":"userCreated","payload":{"id":-9223372036854775808,"name":"` + big + `","flag":true}}`),
			}
			if _, fails, err := h.sink.Apply(context.Background(), ops); err != nil || len(fails) > 0 {
				t.Fatalf("apply: %v %v", fails, err)
			}
			got := h.query(st, "SELECT id, name, big, flag, email FROM TABLE WHERE id = 9007199254740993")
			if len(got) != 1 {
				t.Fatalf("rows = %v", got)
			}
			r := got[0]
			if r[0] != "9007199254740993" || r[1] != `日本語 🚀 "quoted"` || r[2] != "9007199254740993" || r[4] != "NULL" {
				t.Fatalf("row = %q", r)
			}
			if r[3] != "false" && r[3] != "0" {
				t.Fatalf("false came back as %q", r[3])
			}
			sum := "SELECT a + b = 0.3 FROM TABLE WHERE id = 9007199254740993"
			if dialect == rules.DBSQLite {
				// SQLite has no exact decimal type: the digits are kept as text.
				sum = "SELECT a = '0.1' AND b = '0.2' FROM TABLE WHERE id = 9007199254740993"
			}
			if s := h.query(st, sum)[0][0]; s != "true" && s != "1" {
				t.Fatalf("0.1 + 0.2 = 0.3 is %s", s)
			}
			if l := h.query(st, "SELECT name FROM TABLE WHERE id = -9223372036854775808"); len(l) != 1 || l[0][0] != big {
				t.Fatal("1 MiB unicode payload did not round-trip")
			}
		})
	}
}

func TestBadRowsAreIsolated(t *testing.T) {
	for dialect, st := range stores(t) {
		t.Run(dialect, func(t *testing.T) {
			h := newHarness(t, dialect, st)
			var ddl string
			switch dialect {
			case rules.DBMySQL:
				ddl = "CREATE UNIQUE INDEX TABLE_email ON TABLE (email)"
			default:
				ddl = `CREATE UNIQUE INDEX TABLE_email ON TABLE (email)`
			}
			h.query(st, ddl)
			ops := []Op{
				h.op(`{"type":"userCreated","payload":{"id":1,"email":"a@x"}}`),
				h.op(`{"type":"userCreated","payload":{"id":2,"email":"a@x"}}`), // secondary unique index
				h.op(`{"type":"userCreated","payload":{"id":3,"flag":"lots"}}`), // type mismatch
				h.op(`{"type":"userCreated","payload":{"id":4,"email":"b@x"}}`),
				h.op(`{"type":"userRenamed","payload":{"id":2,"name":"ghost"}}`), // creates row 2 without the email
			}
			res, fails, err := h.sink.Apply(context.Background(), ops)
			if err != nil {
				t.Fatal(err)
			}
			if len(fails) != 2 || fails[0].Op.Seq != ops[1].Seq || fails[1].Op.Seq != ops[2].Seq || !errors.Is(fails[0].Err, ErrRejected) {
				t.Fatalf("failures = %v (result %+v)", fails, res)
			}
			t.Logf("dead letters: %v | %v", fails[0].Err, fails[1].Err)
			if got := h.rows(st, "SELECT id FROM TABLE ORDER BY id"); got != "1|2|4" {
				t.Fatalf("rows = %s", got)
			}
			// Redelivery does not reject them again: their offset was recorded.
			res, fails, err = h.sink.Apply(context.Background(), ops)
			if err != nil || len(fails) != 0 || res.Skipped != 5 {
				t.Fatalf("redelivery: %+v %v %v", res, fails, err)
			}
		})
	}
}

// Merges after a whole-row write in one batch keep the row's other columns,
// absent columns of a whole row are NULL, and the ops' own values (which
// exporters read) are not changed by the fold.
func TestMergesWithinOneBatch(t *testing.T) {
	for dialect, st := range stores(t) {
		t.Run(dialect, func(t *testing.T) {
			h := newHarness(t, dialect, st)
			ops := []Op{
				h.op(`{"type":"userCreated","payload":{"id":5,"name":"a","email":"e@x"}}`),
				h.op(`{"type":"userRenamed","payload":{"id":5,"name":"b"}}`),
				h.op(`{"type":"userRenamed","payload":{"id":5,"name":"c"}}`),
				h.op(`{"type":"userCreated","payload":{"id":6,"name":"x"}}`),
				h.op(`{"type":"userRenamed","payload":{"id":6,"name":"y"}}`),
				h.op(`{"type":"userRenamed","payload":{"id":7,"name":"only"}}`),
			}
			if _, fails, err := h.sink.Apply(context.Background(), ops); err != nil || len(fails) > 0 {
				t.Fatalf("apply: %v %v", fails, err)
			}
			if got := h.rows(st, "SELECT id, name, email FROM TABLE ORDER BY id"); got != "5:c:e@x|6:y:NULL|7:only:NULL" {
				t.Fatalf("rows = %s", got)
			}
			if ops[0].Row.Values["name"] != "a" || ops[1].Row.Values["name"] != "b" || len(ops[3].Row.Values) != 2 {
				t.Fatalf("the fold changed the ops' values: %v %v %v", ops[0].Row.Values, ops[1].Row.Values, ops[3].Row.Values)
			}
		})
	}
}

// Two partitions write one view at the same time, each in its own lane (as
// the engine's pipelines do): neither may wait for or deadlock with the other.
func TestConcurrentLanesDoNotConflict(t *testing.T) {
	for dialect, st := range stores(t) {
		if dialect == rules.DBSQLite {
			continue // one connection: transactions are serialised
		}
		t.Run(dialect, func(t *testing.T) {
			h := newHarness(t, dialect, st)
			batches := make([][][]Op, 2) // lane → batch → ops, built before the writers start
			for lane := range 2 {
				for b := range 40 {
					var ops []Op
					for k := range 20 {
						op := h.op(fmt.Sprintf(`{"type":"userCreated","payload":{"id":%d,"name":"b%d"}}`, 1000*lane+k, b))
						op.Lane, op.Seq = fmt.Sprintf("test:%d", lane), uint64(b*20+k+1)
						ops = append(ops, op)
					}
					batches[lane] = append(batches[lane], ops)
				}
			}
			errs := make(chan error, 2)
			for lane := range 2 {
				go func() {
					for b, ops := range batches[lane] {
						if _, fails, err := h.sink.Apply(context.Background(), ops); err != nil || len(fails) > 0 {
							errs <- fmt.Errorf("lane %d batch %d: %v %v", lane, b, fails, err)
							return
						}
					}
					errs <- nil
				}()
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if got := h.rows(st, "SELECT COUNT(*), MIN(name), MAX(name) FROM TABLE"); got != "40:b39:b39" {
				t.Fatalf("rows = %s", got)
			}
		})
	}
}

// PostgreSQL rows travel as text arrays cast to the column types: a JSON
// column gets the value's JSON (a string stays a JSON string, decimals keep
// their digits), a text column gets a nested object's JSON text.
func TestPostgresJSONAndNestedValues(t *testing.T) {
	st := stores(t)[rules.DBPostgres]
	table := testenv.UniqueName("cqrs_json")
	rs := loadRules(t, table, `{"rules":[{"event":"docSaved","table":"TABLE","createTable":true,"mapping":[
	  {"source":"id","target":"id","primary":true,"type":"bigint"},{"source":"doc","target":"doc","type":"json"},
	  {"source":"tags","target":"tags","type":"text"}]}]}`)
	if err := st.Prepare(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropTable(st, table) })
	h := &harness{t: t, rules: rs, sink: &Sink{Name: "pg", Store: st}, table: table}
	ops := []Op{
		h.op(`{"type":"docSaved","payload":{"id":1,"doc":{"a":[1,2.50,"x"]},"tags":{"x":1}}}`),
		h.op(`{"type":"docSaved","payload":{"id":2,"doc":"plain","tags":["a","b"]}}`),
	}
	if _, fails, err := h.sink.Apply(context.Background(), ops); err != nil || len(fails) > 0 {
		t.Fatalf("apply: %v %v", fails, err)
	}
	got := h.rows(st, `SELECT id, doc->'a'->>1, jsonb_typeof(doc), tags FROM TABLE ORDER BY id`)
	if want := `1:2.50:object:{"x":1}|2:NULL:string:["a","b"]`; got != want {
		t.Fatalf("rows = %s, want %s", got, want)
	}
}

// MariaDB and SQLite rounded or converted a value for an integer column
// instead of refusing it: {"id":19.5} overwrote row 20, {"id":true} row 1,
// and a bigint column stored 1.7 as 2. The projection refuses them now (a
// dead letter), the same for every database, key or not, and whichever of
// the table's rules the event goes through.
func TestIntegerColumnsRefuseFractionsAndBooleans(t *testing.T) {
	for dialect, st := range stores(t) {
		t.Run(dialect, func(t *testing.T) {
			h := newHarness(t, dialect, st)
			if _, fails, err := h.sink.Apply(context.Background(), []Op{
				h.op(`{"type":"userCreated","payload":{"id":1,"name":"one","big":1}}`),
				h.op(`{"type":"userCreated","payload":{"id":20,"name":"twenty","big":20}}`),
			}); err != nil || len(fails) > 0 {
				t.Fatalf("apply: %v %v", fails, err)
			}
			const want = "1:one:1|20:twenty:20"
			for _, js := range []string{
				`{"type":"userCreated","payload":{"id":19.5,"name":"overwritten"}}`,
				`{"type":"userCreated","payload":{"id":true,"name":"overwritten"}}`,
				`{"type":"userRenamed","payload":{"id":19.5,"name":"overwritten"}}`,
				`{"type":"userCreated","payload":{"id":1,"name":"one","big":1.7}}`,
				`{"type":"userCreated","payload":{"id":20,"name":"twenty","big":20.5}}`,
				`{"type":"userDeleted","payload":{"id":true}}`,
			} {
				ev, err := event.Decode([]byte(js))
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range h.rules {
					if ok, _ := r.Matches(ev); !ok {
						continue
					}
					row, err := r.Project(ev)
					if errors.Is(err, rules.ErrValue) && strings.Contains(err.Error(), "is not an integer") {
						continue
					}
					t.Errorf("%s: projected (err %v)", js, err)
					h.seq++
					_, _, _ = h.sink.Apply(context.Background(), []Op{{Rule: r, Row: row, Seq: h.seq}})
				}
			}
			if got := h.rows(st, "SELECT id, name, big FROM TABLE ORDER BY id"); got != want {
				t.Fatalf("rows = %s, want %s", got, want)
			}
			// An integral number in another spelling is that integer.
			if _, fails, err := h.sink.Apply(context.Background(), []Op{
				h.op(`{"type":"userRenamed","payload":{"id":20.0,"name":"twenty again"}}`),
				h.op(`{"type":"userCreated","payload":{"id":2e0,"name":"two","big":2000e-3}}`),
			}); err != nil || len(fails) > 0 {
				t.Fatalf("apply: %v %v", fails, err)
			}
			if got := h.rows(st, "SELECT id, name, big FROM TABLE ORDER BY id"); got != "1:one:1|2:two:2|20:twenty again:20" {
				t.Fatalf("rows = %s", got)
			}
		})
	}
}

// Two rules of one event into one table (an upsert while the entity is
// active, a delete when it is gone, a third column from an update) each
// give the event an op with the same sequence in the same view. When a bad
// row sent the batch to be retried op by op, the first op committed its
// offset alone and the second was then skipped as a redelivery.
func TestRulesOfOneEventAndTableAreRetriedTogether(t *testing.T) {
	for dialect, st := range stores(t) {
		t.Run(dialect, func(t *testing.T) {
			table := testenv.UniqueName("cqrs_two_rules")
			rs := loadRules(t, table, `{"rules":[
			 {"event":"s","table":"TABLE","filter":"payload.active","createTable":true,"mapping":[
			   {"source":"id","target":"id","primary":true,"type":"bigint"},{"source":"name","target":"name","type":"text"},
			   {"source":"flag","target":"flag","type":"boolean"},{"source":"shout","target":"shout","type":"text"}]},
			 {"event":"s","table":"TABLE","method":"delete","filter":"!payload.active","mapping":[{"source":"id","target":"id","primary":true}]},
			 {"event":"s","table":"TABLE","method":"update","filter":"payload.active","mapping":[
			   {"source":"id","target":"id","primary":true},{"expr":"payload.name.upperAscii()","target":"shout"}]}]}`)
			if len(rs) != 3 {
				t.Fatalf("rules = %d, want 3", len(rs))
			}
			ctx := context.Background()
			if err := st.Prepare(ctx, rs); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { dropTable(st, table) })
			sk := &Sink{Name: dialect, Store: st}
			var seq uint64
			ops := func(events ...string) []Op {
				var out []Op
				for _, js := range events {
					ev, err := event.Decode([]byte(js))
					if err != nil {
						t.Fatal(err)
					}
					seq++
					for _, r := range rs {
						if ok, err := r.Matches(ev); err != nil || !ok {
							continue
						}
						row, err := r.Project(ev)
						if err != nil {
							t.Fatal(err)
						}
						out = append(out, Op{Rule: r, Row: row, Seq: seq, Lane: "l"})
					}
				}
				return out
			}
			h := &harness{t: t, table: table}
			batch := ops(`{"type":"s","payload":{"id":1,"active":true,"name":"a"}}`,
				`{"type":"s","payload":{"id":2,"active":true,"name":"b"}}`,
				`{"type":"s","payload":{"id":3,"active":true,"name":"c","flag":"lots"}}`) // refused by the database
			_, fails, err := sk.Apply(ctx, batch)
			if err != nil || len(fails) != 2 || fails[0].Op.Row.Key != "3" || fails[1].Op.Row.Key != "3" {
				t.Fatalf("apply: %v %v", fails, err)
			}
			if got := h.rows(st, "SELECT id, name, shout FROM TABLE ORDER BY id"); got != "1:a:A|2:b:B" {
				t.Fatalf("rows = %s", got)
			}
			if _, fails, err := sk.Apply(ctx, ops(`{"type":"s","payload":{"id":1,"active":false}}`, `{"type":"s","payload":{"id":2,"active":true,"name":"bb"}}`)); err != nil || len(fails) > 0 {
				t.Fatalf("apply: %v %v", fails, err)
			}
			if got := h.rows(st, "SELECT id, name, shout FROM TABLE ORDER BY id"); got != "2:bb:BB" {
				t.Fatalf("rows = %s", got)
			}
		})
	}
}

// A MariaDB table that Rosen did not create, with rules that declare no
// types: the sink reads which columns are integers and refuses what the
// server would round (19.5 onto row 20, true onto row 1) as a rejected row;
// a BOOLEAN (TINYINT(1)) column still takes true. A column whose type
// changed since it was read is read again before a value is refused.
func TestMySQLIntegerColumnsOfATableWithoutTypes(t *testing.T) {
	st := stores(t)[rules.DBMySQL].(*SQLStore)
	ctx := context.Background()
	table := testenv.UniqueName("cqrs_untyped")
	if _, err := st.db.ExecContext(ctx, "CREATE TABLE "+myQuote(table)+" (id BIGINT PRIMARY KEY, name TEXT, N INT, flag BOOLEAN)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropTable(st, table) })
	rs := loadRules(t, table, `{"rules":[
	 {"event":"c","table":"TABLE","mapping":[{"source":"id","target":"id","primary":true},{"source":"name","target":"name"},{"source":"n","target":"n"},{"source":"flag","target":"flag"}]},
	 {"event":"d","table":"TABLE","method":"delete","mapping":[{"source":"id","target":"id","primary":true}]}]}`)
	if err := st.Prepare(ctx, rs); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, rules: rs, sink: &Sink{Name: "mysql", Store: st}, table: table}
	if _, fails, err := h.sink.Apply(ctx, []Op{
		h.op(`{"type":"c","payload":{"id":1,"name":"one","n":1,"flag":true}}`),
		h.op(`{"type":"c","payload":{"id":20,"name":"twenty","n":20,"flag":false}}`),
	}); err != nil || len(fails) > 0 {
		t.Fatalf("apply: %v %v", fails, err)
	}
	ops := []Op{
		h.op(`{"type":"c","payload":{"id":19.5,"name":"overwritten"}}`),
		h.op(`{"type":"c","payload":{"id":true,"name":"overwritten"}}`),
		h.op(`{"type":"c","payload":{"id":"1.2","name":"overwritten"}}`),
		h.op(`{"type":"c","payload":{"id":20,"name":"twenty","n":1.7}}`),
		h.op(`{"type":"d","payload":{"id":true}}`),
	}
	_, fails, err := h.sink.Apply(ctx, ops)
	if err != nil || len(fails) != len(ops) {
		t.Fatalf("apply: %d failures of %d, %v: %v", len(fails), len(ops), err, fails)
	}
	for _, f := range fails {
		if !errors.Is(f.Err, ErrRejected) || !errors.Is(f.Err, rules.ErrValue) || !strings.Contains(f.Err.Error(), "is not an integer") {
			t.Errorf("failure: %v", f.Err)
		}
	}
	if got := h.rows(st, "SELECT id, name, n, flag FROM TABLE ORDER BY id"); got != "1:one:1:1|20:twenty:20:0" {
		t.Fatalf("rows = %s", got)
	}
	if _, err := st.db.ExecContext(ctx, "ALTER TABLE "+myQuote(table)+" MODIFY N VARCHAR(10)"); err != nil {
		t.Fatal(err)
	}
	if _, fails, err := h.sink.Apply(ctx, []Op{h.op(`{"type":"c","payload":{"id":20,"name":"twenty","n":1.7}}`)}); err != nil || len(fails) > 0 {
		t.Fatalf("after the column became text: %v %v", fails, err)
	}
	if got := h.rows(st, "SELECT n FROM TABLE WHERE id = 20"); got != "1.7" {
		t.Fatalf("n = %s", got)
	}
}
