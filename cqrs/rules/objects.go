package rules

import (
	"errors"
	"fmt"
	"strings"
)

// RuleObject is one rule defined outside the rules files, such as a
// CQRSRule read from Kubernetes: Where names it in errors ("kube://a:
// CQRSRule shop/orders"), Spec is the rule in the rules.json shape, as JSON.
type RuleObject struct {
	Where string
	Spec  []byte
}

// WithRules returns a copy of c with the rules of objs added. Each is
// checked as a rule of a rules file is (known keys, table, method, the
// database and exporters of c, mapping, CEL filter and expressions) and
// against the views of c and of the objects added before it; an object's
// rule must be complete (no fragments). errs[i] is why objs[i] was left out,
// nil when it was added: a *ConfigError whose File is Where and whose Path
// starts at "spec" (spec.mapping[0].target).
func (c *Config) WithRules(objs []RuleObject) (*Config, []error) {
	out := &Config{Rules: append([]*Rule(nil), c.Rules...), Databases: c.Databases, Exporters: c.Exporters}
	errs := make([]error, len(objs))
	for i, o := range objs {
		r, err := c.ruleObject(o, out.Rules)
		if err != nil {
			errs[i] = err
			continue
		}
		out.Rules = append(out.Rules, r)
	}
	return out, errs
}

func (c *Config) ruleObject(o RuleObject, before []*Rule) (*Rule, error) {
	r := &Rule{file: o.Where, index: -1}
	if err := decodeStrict(o.Where, o.Spec, r); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.Path = "spec" + strings.TrimPrefix(ce.Path, "$")
		}
		return nil, err
	}
	if r.Event == "" {
		return nil, cfgErr(o.Where, "spec.event", ErrMissing)
	}
	if r.Database == "" && len(c.Databases) == 1 {
		for name := range c.Databases {
			r.Database = name
		}
	}
	if err := validateRule(r, c); err != nil {
		return nil, err
	}
	if prev := sameRule(before, r); prev != nil {
		return nil, cfgErr(o.Where, "spec", fmt.Errorf("%w: the same rule (event %q into %s.%s) is defined in %s", ErrInvalid, r.Event, r.Database, r.Table, prev.Where()))
	}
	all := append(append([]*Rule(nil), before...), r)
	if err := checkViews(all); err != nil {
		return nil, err
	}
	shareKindsInto(r, all)
	return r, nil
}
