package authz

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	opametrics "github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// ErrPolicy is a policy evaluation that failed (a runtime error, a panic,
// the deadline); the server answers it with a deny.
var ErrPolicy = errors.New("authz: policy evaluation failed")

// Eval runs the prepared query on input and returns the value of its first
// result (nil when undefined). A panic inside evaluation is recovered into
// an error wrapping ErrPolicy.
func (p *Policy) Eval(ctx context.Context, input map[string]any) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%w: panic: %v", ErrPolicy, r)
		}
	}()
	// The input goes in as a lazy object: the evaluator converts a member
	// to its own values when the policy first reads it (a policy that
	// iterates or compares a whole object converts that object whole), so
	// the parts no rule looks at are never converted. A value that cannot be
	// converted panics inside the evaluation: recovered above, a deny. A
	// result that holds a lazy object (a rule returning input or part of it)
	// is converted in full (copyMaps), as an eagerly converted input would be.
	//
	// Cancellation: rego's default starts a goroutine per evaluation to watch
	// ctx; context.AfterFunc cancels the same way without one.
	c := topdown.NewCancel()
	stop := context.AfterFunc(ctx, c.Cancel)
	defer stop()
	rs, err := p.prepared.Eval(ctx, rego.EvalParsedInput(ast.LazyObject(input)), rego.EvalExternalCancel(c), noMetrics, copyMaps)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", ErrPolicy, ctx.Err())
		}
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil
	}
	return rs[0].Expressions[0].Value, nil
}

// noMetrics skips the per-evaluation metrics registry rego allocates when
// none is given; Rosen keeps its own per-decision metrics.
var noMetrics = rego.EvalMetrics(opametrics.NoOp())

// copyMaps makes a lazy object in a result come back fully converted rather
// than as the Go map it was built from (which may hold ast values, such as
// the claims), so results do not depend on the input being lazy.
var copyMaps = rego.EvalCopyMaps(true)

// stackReserve is how much stack a policy evaluation is given up front.
// OPA's evaluator recurses deeply; on a fresh goroutine (gRPC starts one per
// request) its stack would double several times with the evaluation deep
// inside it, and each doubling walks and adjusts every frame (≈ 20 % of the
// server's CPU under load). Growing it once here, while the stack is
// shallow, costs one cheap copy.
const stackReserve = 32 << 10

// growStack makes the calling goroutine's stack at least stackReserve deep.
//
//go:noinline
func growStack() byte {
	var pad [stackReserve]byte
	pad[stackSink%stackReserve] = 1
	return pad[(stackSink+1)%stackReserve]
}

// stackSink keeps the compiler from proving pad unused.
var stackSink = 0
