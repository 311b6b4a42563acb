package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/rosenmesh/rosen/cqrs/event"
)

// ErrNoKey means the event lacks a primary-key value the rule needs.
var ErrNoKey = errors.New("rules: primary key missing in event")

// Row is one event projected by one rule.
type Row struct {
	Key    string         // the primary key's values joined: the fold and ordering key
	Values map[string]any // target column → value, only the columns the event sets
	Delete bool           // delete the row
	Full   bool           // insert/upsert: columns not in Values become NULL
}

// ErrPanic is a panic while one event was matched or projected: the event
// is dead-lettered with it instead of the process dying (and dying again on
// the redelivery).
var ErrPanic = errors.New("rules: evaluation panicked")

// recovered turns a panic into the event's error.
func recovered(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: %v", ErrPanic, p)
	}
}

// Matches evaluates the rule's event type and filter.
func (r *Rule) Matches(ev *event.Event) (ok bool, err error) {
	if ev.Type != r.Event {
		return false, nil
	}
	defer recovered(&err)
	if r.prog == nil || r.prog.filter == nil {
		return true, nil
	}
	out, _, err := r.prog.filter.Eval(activation(ev))
	if err != nil {
		return false, fmt.Errorf("%w: filter: %w", ErrExpr, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("%w: filter yields %s, not bool", ErrExpr, out.Type())
	}
	return b, nil
}

// Project maps the event into a row of the rule's table.
func (r *Rule) Project(ev *event.Event) (_ Row, err error) {
	defer recovered(&err)
	row := Row{Values: make(map[string]any, len(r.Mapping)), Delete: r.Method == MethodDelete, Full: r.Method == MethodInsert || r.Method == MethodUpsert}
	var kbuf [4]string
	keys := kbuf[:0]
	var act map[string]any
	for i, m := range r.Mapping {
		if m.Expr != "" {
			if row.Delete {
				continue
			}
			if act == nil {
				act = activation(ev)
			}
			out, _, err := r.prog.exprs[i].Eval(act)
			if err != nil {
				return Row{}, fmt.Errorf("%w: column %s: %w", ErrExpr, m.Target, err)
			}
			v, err := nativeValue(out)
			if err != nil {
				return Row{}, fmt.Errorf("column %s: %w", m.Target, err)
			}
			if v, err = r.check(i, v); err != nil {
				return Row{}, err
			}
			row.Values[m.Target] = v
			continue
		}
		v, found := event.Lookup(ev.Payload, m.Source)
		if m.Primary {
			if !found || v == nil {
				return Row{}, fmt.Errorf("%w: %s (column %s)", ErrNoKey, m.Source, m.Target)
			}
			var err error
			if v, err = r.check(i, v); err != nil {
				return Row{}, err
			}
			s, err := keyText(v)
			if err != nil {
				return Row{}, fmt.Errorf("%w: %s: %w", ErrNoKey, m.Source, err)
			}
			keys = append(keys, s)
			row.Values[m.Target] = v
			continue
		}
		if row.Delete || !found {
			continue
		}
		v, err := r.check(i, v)
		if err != nil {
			return Row{}, err
		}
		row.Values[m.Target] = v
	}
	row.Key = strings.Join(keys, "\x1f")
	return row, nil
}

// check checks the value of mapping i against its column's kind.
func (r *Rule) check(i int, v any) (any, error) {
	if i >= len(r.kinds) {
		return v, nil
	}
	return checkValue(r.kinds[i], r.Mapping[i].Target, v)
}

func keyText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		if x {
			return "true", nil
		}
		return "false", nil
	}
	return "", fmt.Errorf("a key must be a string, number or boolean, not %T", v)
}
