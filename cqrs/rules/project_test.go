package rules

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types/ref"

	"github.com/rosenmesh/rosen/cqrs/event"
)

func loadOne(t *testing.T, rules string) *Rule {
	t.Helper()
	dir := t.TempDir()
	write(t, dir, "rules.json", rules)
	write(t, dir, "databases.json", goodDBs)
	cfg, err := Load(Files{Rules: []string{filepath.Join(dir, "rules.json")}, Databases: []string{filepath.Join(dir, "databases.json")}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Rules[0]
}

func mustEvent(t *testing.T, s string) *event.Event {
	t.Helper()
	ev, err := event.Decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestProjectNestedFilterAndExpr(t *testing.T) {
	r := loadOne(t, `{"rules":[{"event":"orderPlaced","table":"orders","method":"update","filter":"payload.total > 10",
	  "mapping":[{"source":"order.id","target":"id","primary":true},{"source":"order.customer.id","target":"customer"},
	  {"expr":"payload.note.upperAscii()","target":"note"},{"source":"missing","target":"m"},{"expr":"payload.total * 2","target":"twice"}]}]}`)
	ev := mustEvent(t, `{"type":"orderPlaced","payload":{"total":11,"note":"héllo","order":{"id":9007199254740993,"customer":{"id":"c-1"}}}}`)
	ok, err := r.Matches(ev)
	if err != nil || !ok {
		t.Fatalf("matches = %v %v", ok, err)
	}
	row, err := r.Project(ev)
	if err != nil {
		t.Fatal(err)
	}
	if row.Key != "9007199254740993" || row.Full || row.Delete {
		t.Fatalf("row = %+v", row)
	}
	if row.Values["customer"] != "c-1" || row.Values["note"] != "HéLLO" || row.Values["twice"] != json.Number("22") {
		t.Fatalf("values = %#v", row.Values)
	}
	if _, present := row.Values["m"]; present {
		t.Fatal("an absent field must not be set by update")
	}
	small := mustEvent(t, `{"type":"orderPlaced","payload":{"total":3,"order":{"id":1}}}`)
	if ok, _ := r.Matches(small); ok {
		t.Fatal("filter let total 3 through")
	}
	other := mustEvent(t, `{"type":"orderShipped","payload":{"total":30}}`)
	if ok, _ := r.Matches(other); ok {
		t.Fatal("wrong event type matched")
	}
	noKey := mustEvent(t, `{"type":"orderPlaced","payload":{"total":30,"note":"x"}}`)
	if _, err := r.Project(noKey); !errors.Is(err, ErrNoKey) {
		t.Fatalf("missing key err = %v", err)
	}
	badExpr := mustEvent(t, `{"type":"orderPlaced","payload":{"total":30,"note":5,"order":{"id":2}}}`)
	if _, err := r.Project(badExpr); !errors.Is(err, ErrExpr) {
		t.Fatalf("expression on wrong type err = %v", err)
	}
	if _, err := r.Matches(mustEvent(t, `{"type":"orderPlaced","payload":{"total":"many"}}`)); !errors.Is(err, ErrExpr) {
		t.Fatalf("filter on wrong type err = %v", err)
	}
}

// A CEL column that comes out NaN or infinite used to panic in nativeValue
// (big.Float.SetFloat64(NaN)) and kill the process; now it is that event's
// error, naming the column.
func TestNonFiniteExpressionIsTheEventsError(t *testing.T) {
	r := loadOne(t, `{"rules":[{"event":"x","table":"t","mapping":[{"source":"id","target":"id","primary":true},
	  {"expr":"double(payload.s)","target":"d","type":"double"},{"expr":"math.sqrt(payload.v)","target":"r"},
	  {"expr":"payload.n - payload.n","target":"z"},{"expr":"payload.n","target":"inf"},{"expr":"[1.0, payload.n]","target":"list"}]}]}`)
	cases := map[string]string{
		`{"type":"x","payload":{"id":3,"s":"NaN"}}`:                "column d: ",
		`{"type":"x","payload":{"id":3,"s":"-Infinity"}}`:          "column d: ",
		`{"type":"x","payload":{"id":3,"s":"1","v":-1.0}}`:         "column r: ",
		`{"type":"x","payload":{"id":3,"s":"1","v":1,"n":1e400}}`:  "column z: ",
		`{"type":"x","payload":{"id":3,"s":"1","v":1,"n":-1e400}}`: "column z: ",
	}
	for js, want := range cases {
		_, err := r.Project(mustEvent(t, js))
		if !errors.Is(err, ErrNotNumber) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: err = %v, want ErrNotNumber at %q", js, err, want)
		}
	}
	// Each expression on its own, so the later columns are reached too.
	for _, c := range []struct{ expr, payload string }{
		{"payload.n", `{"id":1,"n":1e400}`},
		{"[1.0, payload.n]", `{"id":1,"n":1e400}`},
		{"{'a': payload.n - payload.n}", `{"id":1,"n":1e400}`},
	} {
		r := loadOne(t, `{"rules":[{"event":"x","table":"t","mapping":[{"source":"id","target":"id","primary":true},{"expr":"`+c.expr+`","target":"c"}]}]}`)
		if _, err := r.Project(mustEvent(t, `{"type":"x","payload":`+c.payload+`}`)); !errors.Is(err, ErrNotNumber) {
			t.Fatalf("%s: err = %v", c.expr, err)
		}
	}
	row, err := r.Project(mustEvent(t, `{"type":"x","payload":{"id":3,"s":"2.5","v":4,"n":1}}`))
	if err != nil || row.Values["d"] != json.Number("2.5") || row.Values["r"] != json.Number("2") {
		t.Fatalf("finite values: %v %#v", err, row.Values)
	}
}

// panicky is a program that panics, as a bug in an evaluator would.
type panicky struct{ cel.Program }

func (panicky) Eval(any) (ref.Val, *cel.EvalDetails, error) { panic("evaluator bug") }

// A panic while one event is matched or projected is that event's error
// (a dead letter), not a crash of the process.
func TestPanicInOneEventIsItsError(t *testing.T) {
	r := loadOne(t, `{"rules":[{"event":"x","table":"t","filter":"payload.id > 0","mapping":[{"source":"id","target":"id","primary":true},{"expr":"payload.id + 1","target":"next"}]}]}`)
	ev := mustEvent(t, `{"type":"x","payload":{"id":3}}`)
	r.prog.exprs[1] = panicky{}
	if _, err := r.Project(ev); !errors.Is(err, ErrPanic) || !strings.Contains(err.Error(), "evaluator bug") {
		t.Fatalf("project err = %v", err)
	}
	r.prog.filter = panicky{}
	if _, err := r.Matches(ev); !errors.Is(err, ErrPanic) {
		t.Fatalf("matches err = %v", err)
	}
}
