package rules

import (
	"errors"
	"strings"
	"testing"
)

// TestWithRulesChecksEachObject: rules from objects (CQRSRules in
// Kubernetes) are checked one by one like a rules file's; a bad one is left
// out with an error naming the object and the field under spec, and the
// good ones are added.
func TestWithRulesChecksEachObject(t *testing.T) {
	base := &Config{
		Databases: map[string]Database{"db": {Type: DBSQLite, DBName: "x.db"}},
		Exporters: map[string]Exporter{"hook": {Type: ExpREST, URL: "http://127.0.0.1:1/x"}},
	}
	good := `{"event":"orderCreated","table":"orders","method":"upsert","exporter":["hook"],"filter":"payload.total > 0",
	  "mapping":[{"source":"id","target":"id","primary":true},{"expr":"payload.total * 2","target":"double_total"}]}`
	objs := []RuleObject{
		{Where: "kube://a: CQRSRule shop/orders", Spec: []byte(good)},
		{Where: "kube://a: CQRSRule shop/unknown-db", Spec: []byte(`{"event":"e","table":"t","database":"nope","mapping":[{"source":"id","target":"id","primary":true}]}`)},
		{Where: "kube://a: CQRSRule shop/bad-cel", Spec: []byte(`{"event":"e","table":"t","filter":"payload.(","mapping":[{"source":"id","target":"id","primary":true}]}`)},
		{Where: "kube://a: CQRSRule shop/unknown-key", Spec: []byte(`{"event":"e","table":"t","mapping":[{"source":"id","target":"id","primary":true,"colour":"red"}]}`)},
		{Where: "kube://a: CQRSRule shop/no-event", Spec: []byte(`{"table":"t","mapping":[{"source":"id","target":"id","primary":true}]}`)},
		{Where: "kube://a: CQRSRule shop/no-primary", Spec: []byte(`{"event":"e","table":"t","mapping":[{"source":"id","target":"id"}]}`)},
		{Where: "kube://a: CQRSRule shop/both", Spec: []byte(`{"event":"e","table":"t","mapping":[{"source":"id","expr":"1","target":"id","primary":true}]}`)},
		{Where: "kube://a: CQRSRule shop/bad-exporter", Spec: []byte(`{"event":"e","table":"t","exporter":["x"],"mapping":[{"source":"id","target":"id","primary":true}]}`)},
		{Where: "kube://a: CQRSRule shop/same", Spec: []byte(good)},
		{Where: "kube://a: CQRSRule shop/view-clash", Spec: []byte(`{"event":"orderPaid","table":"orders","mapping":[{"source":"order","target":"order_id","primary":true}]}`)},
	}
	cfg, errs := base.WithRules(objs)
	want := []struct{ path, text string }{
		{},
		{"spec.database", `database "nope" is not in the databases config`},
		{"spec.filter", "Syntax error"},
		{"spec.mapping[0].colour", `unknown key "colour"`},
		{"spec.event", "required field missing"},
		{"spec.mapping", "no mapping is marked primary"},
		{"spec.mapping[0]", "exactly one of source and expr"},
		{"spec.exporter[0]", `exporter "x" is not in the exporter config`},
		{"spec", "the same rule"},
		{"spec", `view "orders" in database "db" is orders(id)`},
	}
	for i, w := range want {
		err := errs[i]
		if w.path == "" {
			if err != nil {
				t.Errorf("%s: %v", objs[i].Where, err)
			}
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: got %v, want a ConfigError at %s", objs[i].Where, err, w.path)
			continue
		}
		if ce.File != objs[i].Where || ce.Path != w.path || !strings.Contains(ce.Err.Error(), w.text) {
			t.Errorf("%s: got %s | %s | %v, want path %s containing %q", objs[i].Where, ce.File, ce.Path, ce.Err, w.path, w.text)
		}
	}
	if len(cfg.Rules) != 1 || cfg.Rules[0].Database != "db" || cfg.Rules[0].ViewName() != "orders" || cfg.Rules[0].Method != MethodUpsert {
		t.Fatalf("rules %+v", cfg.Rules)
	}
	if w := cfg.Rules[0].Where(); w != "kube://a: CQRSRule shop/orders: spec" {
		t.Errorf("Where() = %q", w)
	}
	if len(base.Rules) != 0 {
		t.Error("WithRules changed its receiver")
	}
}
