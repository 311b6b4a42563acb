package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrValue is a value that its column's declared type cannot hold exactly:
// 19.5 or true for an integer column, 1e400 for a double. MySQL and SQLite
// would round or convert it silently (19.5 onto row 20, true onto row 1),
// so the event is dead-lettered instead, the same on every database.
var ErrValue = errors.New("rules: value does not fit its column")

type valueError struct{ col, msg string }

func (e *valueError) Error() string { return "column " + e.col + ": " + e.msg }
func (e *valueError) Unwrap() error { return ErrValue }

// colKind is what a mapping's type says about the values it accepts.
type colKind uint8

const (
	kindAny     colKind = iota // no type, or one that is not a number
	kindInt                    // int, integer, bigint
	kindFloat                  // float, double
	kindDecimal                // decimal, numeric, numeric(p,s)
)

func kindOf(typ string) colKind {
	t := strings.ToLower(typ)
	switch {
	case t == "int" || t == "integer" || t == "bigint":
		return kindInt
	case t == "float" || t == "double":
		return kindFloat
	case t == "decimal" || strings.HasPrefix(t, "numeric"):
		return kindDecimal
	}
	return kindAny
}

// setKinds records the kind of each of the rule's columns.
func (r *Rule) setKinds() {
	r.kinds = make([]colKind, len(r.Mapping))
	for i, m := range r.Mapping {
		r.kinds[i] = kindOf(m.Type)
	}
}

// shareKinds gives a column without a type the kind another rule declares
// for the same column of the same table (an update or delete rule usually
// leaves the types to the rule that creates the table).
func shareKinds(rs []*Rule) {
	declared := declaredKinds(rs)
	for _, r := range rs {
		r.inheritKinds(declared)
	}
}

// shareKindsInto is shareKinds for r alone (the other rules are not changed).
func shareKindsInto(r *Rule, all []*Rule) { r.inheritKinds(declaredKinds(all)) }

func kindKey(r *Rule, target string) string {
	return r.Database + "\x00" + r.Table + "\x00" + strings.ToLower(target)
}

func declaredKinds(rs []*Rule) map[string]colKind {
	declared := map[string]colKind{}
	for _, r := range rs {
		for _, m := range r.Mapping {
			if _, ok := declared[kindKey(r, m.Target)]; !ok && m.Type != "" {
				declared[kindKey(r, m.Target)] = kindOf(m.Type)
			}
		}
	}
	return declared
}

func (r *Rule) inheritKinds(declared map[string]colKind) {
	for i, m := range r.Mapping {
		if m.Type == "" && i < len(r.kinds) {
			r.kinds[i] = declared[kindKey(r, m.Target)]
		}
	}
}

// CheckInteger checks a value for an integer column the way a rule's
// integer type does (for sinks that know a column's type from its table):
// the error wraps ErrValue.
func CheckInteger(col string, v any) error {
	_, err := checkValue(kindInt, col, v)
	return err
}

// checkValue checks a value against its column's kind and returns it as the
// sink gets it: an integral number is written as its integer digits (20.0
// and 2e1 are 20, so they also fold onto the same key).
func checkValue(kind colKind, col string, v any) (any, error) {
	if kind == kindAny || v == nil {
		return v, nil
	}
	bad := func(format string, args ...any) error {
		return &valueError{col: col, msg: fmt.Sprintf(format, args...)}
	}
	switch x := v.(type) {
	case json.Number:
		switch kind {
		case kindInt:
			if isDigits(strings.TrimPrefix(string(x), "-")) && x != "-0" {
				return v, nil // the usual case: JSON has no leading zeros to trim
			}
			s, ok, tooBig := integerText(x.String())
			if tooBig {
				return nil, bad("%s is out of range for an integer column", x)
			}
			if !ok {
				return nil, bad("%s is not an integer", x)
			}
			return json.Number(s), nil
		case kindFloat:
			if f, _ := strconv.ParseFloat(x.String(), 64); math.IsInf(f, 0) {
				return nil, bad("%s is beyond a double (it would be stored as %v)", x, f)
			}
		}
		return x, nil
	case string:
		if kind == kindInt {
			if !isDigits(strings.TrimPrefix(x, "-")) {
				return nil, bad("%q is not an integer", x)
			}
			return x, nil
		}
		// PostgreSQL reads 'NaN' and 'Infinity' into double and numeric columns.
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); (err == nil || errors.Is(err, strconv.ErrRange)) && (math.IsInf(f, 0) || math.IsNaN(f)) {
			return nil, bad("%q: NaN/Inf is not a number a database column can hold", x)
		}
		return x, nil
	case bool:
		if kind == kindInt {
			return nil, bad("%v is not an integer", x)
		}
		return nil, bad("%v is not a number", x)
	case map[string]any, []any:
		if kind == kindInt {
			return nil, bad("a JSON %s is not an integer", jsonKind(x))
		}
		return nil, bad("a JSON %s is not a number", jsonKind(x))
	}
	return v, nil
}

func jsonKind(v any) string {
	if _, ok := v.([]any); ok {
		return "array"
	}
	return "object"
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// maxIntDigits bounds the digits an integral number may expand to (2e999999
// is integral, but no integer column holds it); the database's own range
// check handles what is below.
const maxIntDigits = 100

// integerText is the integer digits of a JSON number whose exact value is an
// integer ("20", "20.0", "2e1", "-0" → "0"); ok is false for any other, and
// tooBig is set for an integer of more than maxIntDigits digits.
func integerText(s string) (digits string, ok, tooBig bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, expText, hasExp := strings.Cut(strings.ToLower(s), "e")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits = strings.TrimLeft(intPart+frac, "0")
	if !isDigits(intPart + frac) {
		return "", false, false
	}
	if digits == "" {
		return "0", true, false // zero, whatever its exponent
	}
	exp := 0
	if hasExp {
		e, err := strconv.Atoi(strings.TrimPrefix(expText, "+"))
		if err != nil || e > maxIntDigits+len(frac) || e < -maxIntDigits-len(mant) {
			return "", false, (err != nil && !strings.HasPrefix(expText, "-")) || e > 0
		}
		exp = e
	}
	// The value is digits × 10^scale (leading zeros trimmed).
	scale := exp - len(frac)
	if scale < 0 {
		drop := -scale
		if drop > len(digits) || strings.Trim(digits[len(digits)-drop:], "0") != "" {
			return "", false, false // a fraction
		}
		digits = digits[:len(digits)-drop]
	} else if scale > 0 {
		if len(digits)+scale > maxIntDigits {
			return "", false, true
		}
		digits += strings.Repeat("0", scale)
	}
	if len(digits) > maxIntDigits {
		return "", false, true
	}
	if neg {
		return "-" + digits, true, false
	}
	return digits, true, false
}
