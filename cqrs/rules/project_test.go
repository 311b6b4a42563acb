package rules

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

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
