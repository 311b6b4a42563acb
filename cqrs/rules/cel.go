package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/rosenmesh/rosen/cqrs/event"
)

// ErrExpr is a CEL evaluation failure on one event (a dead letter, not a crash).
var ErrExpr = errors.New("rules: expression failed")

type programs struct {
	filter cel.Program
	exprs  map[int]cel.Program // mapping index → program
}

var celEnv = func() *cel.Env {
	env, err := cel.NewEnv(
		cel.Variable("event", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("payload", cel.MapType(cel.StringType, cel.DynType)),
		ext.Strings(),
		ext.Encoders(),
		ext.Math(),
	)
	if err != nil {
		panic(err) // a static declaration; it cannot fail at run time
	}
	return env
}()

func compileRule(r *Rule) (*programs, error) {
	p := &programs{exprs: map[int]cel.Program{}}
	path := rulePath(r.index)
	if r.Filter != "" {
		prg, err := compile(r.Filter, cel.BoolType)
		if err != nil {
			return nil, cfgErr(r.file, path+".filter", err)
		}
		p.filter = prg
	}
	for i, m := range r.Mapping {
		if m.Expr == "" {
			continue
		}
		prg, err := compile(m.Expr, nil)
		if err != nil {
			return nil, cfgErr(r.file, path+".mapping["+strconv.Itoa(i)+"].expr", err)
		}
		p.exprs[i] = prg
	}
	return p, nil
}

func compile(src string, want *cel.Type) (cel.Program, error) {
	ast, iss := celEnv.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, iss.Err())
	}
	if want != nil && !ast.OutputType().IsAssignableType(want) && ast.OutputType() != cel.DynType {
		return nil, fmt.Errorf("%w: expression yields %s, want %s", ErrInvalid, ast.OutputType(), want)
	}
	prg, err := celEnv.Program(ast, cel.CostLimit(100_000))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return prg, nil
}

func activation(ev *event.Event) map[string]any {
	payload := celValue(ev.Payload).(map[string]any)
	return map[string]any{
		"payload": payload,
		"event": map[string]any{
			"id": ev.ID, "type": ev.Type, "key": ev.Key, "time": ev.Time,
			"payload": payload,
		},
	}
}

// celValue turns exact JSON numbers into CEL numbers: int when it fits,
// uint when it fits, double otherwise. (Mapped source paths keep exact text;
// only values that pass through an expression are converted.)
func celValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(x.String(), 10, 64); err == nil {
			return u
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = celValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = celValue(e)
		}
		return out
	}
	return v
}

// nativeValue turns a CEL result back into the row value types (json.Number
// for numbers, so sinks see one representation).
func nativeValue(v ref.Val) (any, error) {
	switch x := v.(type) {
	case types.Int:
		return json.Number(strconv.FormatInt(int64(x), 10)), nil
	case types.Uint:
		return json.Number(strconv.FormatUint(uint64(x), 10)), nil
	case types.Double:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, errNonFinite(float64(x))
		}
		f := new(big.Float).SetFloat64(float64(x))
		return json.Number(f.Text('g', -1)), nil
	case types.String:
		return string(x), nil
	case types.Bool:
		return bool(x), nil
	case types.Null:
		return nil, nil
	}
	pb, err := v.ConvertToNative(reflect.TypeFor[*structpb.Value]())
	if err != nil {
		return nil, fmt.Errorf("%w: result of type %s: %w", ErrExpr, v.Type(), err)
	}
	if f, ok := nonFinite(pb.(*structpb.Value)); ok {
		return nil, errNonFinite(f)
	}
	return pb.(*structpb.Value).AsInterface(), nil
}

// ErrNotNumber is a NaN or infinity bound for a column: no database column
// holds one faithfully (PostgreSQL would store Infinity, the others fail).
var ErrNotNumber = errors.New("rules: NaN/Inf is not a number a database column can hold")

func errNonFinite(f float64) error { return fmt.Errorf("%w (%v)", ErrNotNumber, f) }

// nonFinite finds a NaN or infinity inside a list or map result (which
// AsInterface would turn into the strings "NaN" and "Infinity").
func nonFinite(v *structpb.Value) (float64, bool) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		f := k.NumberValue
		return f, math.IsNaN(f) || math.IsInf(f, 0)
	case *structpb.Value_ListValue:
		for _, e := range k.ListValue.GetValues() {
			if f, bad := nonFinite(e); bad {
				return f, true
			}
		}
	case *structpb.Value_StructValue:
		for _, e := range k.StructValue.GetFields() {
			if f, bad := nonFinite(e); bad {
				return f, true
			}
		}
	}
	return 0, false
}
