package coordinator

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/rosenmesh/rosen/txn/store"
)

// SchemeCaller sends each call by its action's scheme: grpc:// to GRPC,
// everything else (http, https) to HTTP. It is the coordinator's default.
type SchemeCaller struct {
	HTTP *HTTPCaller
	GRPC *GRPCCaller
}

// NewSchemeCaller returns HTTP and gRPC callers sharing one per-call timeout.
// They connect to any address; the coordinator's own caller (Options.Caller
// left nil) also refuses Options.DenyNets.
func NewSchemeCaller(timeout time.Duration) *SchemeCaller { return newSchemeCaller(timeout, nil) }

func newSchemeCaller(timeout time.Duration, guard netGuard) *SchemeCaller {
	h := NewHTTPCaller(timeout)
	tr := h.Client.Transport.(*http.Transport)
	tr.DialContext = guard.dialer().DialContext
	tr.Proxy = guard.proxy(tr.Proxy) // a proxy connects to the participant: checked before it is asked to
	g := NewGRPCCaller(timeout)
	g.dial = guard.dialContext
	return &SchemeCaller{HTTP: h, GRPC: g}
}

// Call implements Caller.
func (c *SchemeCaller) Call(ctx context.Context, t *store.Txn, b *store.Branch, phase string) Outcome {
	a := actionFor(b, phase)
	if len(a.URL) >= len(GRPCScheme) && strings.EqualFold(a.URL[:len(GRPCScheme)], GRPCScheme) { // url.Parse accepts GRPC:// too
		return c.GRPC.Call(ctx, t, b, phase)
	}
	return c.HTTP.Call(ctx, t, b, phase)
}

// Close releases pooled HTTP connections and cached gRPC connections.
func (c *SchemeCaller) Close() {
	c.HTTP.CloseIdle()
	c.GRPC.Close()
}

// actionFor is b's action for phase (confirm, or cancel).
func actionFor(b *store.Branch, phase string) store.Action {
	if phase == PhaseCancel {
		return b.Cancel
	}
	return b.Confirm
}
