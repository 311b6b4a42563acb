// Package participant is the Go SDK for TCC with Rosen: the caller's side
// (begin a global transaction, register a branch and call its Try with the
// protocol headers, commit or abort) and the participant's side (an HTTP
// handler that runs Try/Confirm/Cancel behind a barrier and answers in the
// coordinator's status protocol).
package participant

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
	"github.com/rosenmesh/rosen/txn/wire"
)

// Errors of the caller's side.
var (
	ErrTryFailed   = errors.New("participant: try failed")
	ErrCoordinator = errors.New("participant: coordinator refused")
)

// Client talks to a coordinator's REST API, and to participants' Try
// endpoints over HTTP or gRPC.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8080
	HTTP    *http.Client
	// GRPC calls grpc:// Try endpoints (one cached connection per host:port);
	// NewClient sets it, Close closes its connections.
	GRPC *coordinator.GRPCCaller
}

// NewClient returns a client with a pooled transport.
func NewClient(baseURL string) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	return &Client{BaseURL: strings.TrimSuffix(baseURL, "/"), HTTP: &http.Client{Transport: tr, Timeout: 2 * time.Minute},
		GRPC: coordinator.NewGRPCCaller(30 * time.Second)}
}

// Close releases pooled HTTP connections and cached gRPC connections.
func (c *Client) Close() {
	c.HTTP.CloseIdleConnections()
	if c.GRPC != nil {
		c.GRPC.Close()
	}
}

// Options of a new global transaction.
type Options struct {
	ID      string            // chosen by the coordinator when empty
	Timeout time.Duration     // the coordinator's default when zero
	Headers map[string]string // sent with every confirm/cancel call
	// Branches are registered with the begin itself (one request instead of
	// one per branch); Try on one of them then only calls its Try endpoint.
	// Their Try field is not sent to the coordinator.
	Branches []Branch
}

// Global is a running global transaction.
type Global struct {
	ID         string
	c          *Client
	registered map[string]bool // branches registered with the begin
}

// Branch is one participant's part: the caller runs Try, the coordinator Confirm or Cancel.
// Each endpoint is an http(s):// URL or a gRPC method, grpc://host:port/package.Service/Method.
type Branch struct {
	ID      string
	Try     string // URL the caller POSTs now (or the gRPC method it invokes)
	Confirm string // endpoints the coordinator calls in phase two
	Cancel  string
	Payload any // JSON body of all three calls (a JSON object for gRPC: sent as google.protobuf.Struct)
}

func (c *Client) do(ctx context.Context, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("participant: encode: %w", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return 0, fmt.Errorf("participant: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("participant: coordinator: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		_ = json.Unmarshal(raw, &e)
		return resp.StatusCode, fmt.Errorf("%w: %s %s: %d %s", ErrCoordinator, method, path, resp.StatusCode, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("participant: decode: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// Begin starts a global transaction (with o.Branches registered in the same request).
func (c *Client) Begin(ctx context.Context, o Options) (*Global, error) {
	body := wire.Begin{ID: o.ID, Headers: o.Headers}
	if o.Timeout > 0 {
		body.Timeout = wire.Duration(o.Timeout)
	}
	var registered map[string]bool
	for _, b := range o.Branches {
		reg, err := registration(b)
		if err != nil {
			return nil, err
		}
		body.Branches = append(body.Branches, reg)
		if registered == nil {
			registered = map[string]bool{}
		}
		registered[b.ID] = true
	}
	var out struct{ ID string }
	if _, err := c.do(ctx, http.MethodPost, "/api/txn/transactions", body, &out); err != nil {
		return nil, err
	}
	return &Global{ID: out.ID, c: c, registered: registered}, nil
}

// registration is b as the coordinator registers it: confirm and cancel POSTed b's payload.
func registration(b Branch) (wire.Branch, error) {
	payload, err := json.Marshal(b.Payload)
	if err != nil {
		return wire.Branch{}, fmt.Errorf("participant: payload: %w", err)
	}
	return wire.Branch{ID: b.ID, Confirm: b.Confirm, Cancel: b.Cancel, Payload: payload}, nil
}

func (g *Global) path(suffix string) string {
	return "/api/txn/transactions/" + url.PathEscape(g.ID) + suffix
}

// Try registers the branch with the coordinator (so it will be confirmed or
// cancelled whatever happens next; not again when it came with the begin)
// and then calls its Try URL with the protocol headers. A Try that fails
// returns ErrTryFailed: abort the transaction.
func (g *Global) Try(ctx context.Context, b Branch) error {
	reg, err := registration(b)
	if err != nil {
		return err
	}
	payload := []byte(reg.Payload)
	if !g.registered[b.ID] {
		if _, err := g.c.do(ctx, http.MethodPost, g.path("/branches"), reg, nil); err != nil {
			return err
		}
	}
	if len(b.Try) >= len(coordinator.GRPCScheme) && strings.EqualFold(b.Try[:len(coordinator.GRPCScheme)], coordinator.GRPCScheme) {
		return g.tryGRPC(ctx, b, payload)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.Try, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrTryFailed, b.ID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(coordinator.HeaderTxnID, g.ID)
	req.Header.Set(coordinator.HeaderBranchID, b.ID)
	req.Header.Set(coordinator.HeaderPhase, coordinator.PhaseTry)
	if tp := TraceparentFrom(ctx); tp != "" {
		req.Header.Set("traceparent", tp)
	}
	resp, err := g.c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrTryFailed, b.ID, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if o := coordinator.Classify(resp.StatusCode, body); o.Result != coordinator.Done {
		return fmt.Errorf("%w: %s: %s", ErrTryFailed, b.ID, o.Detail)
	}
	return nil
}

// tryGRPC invokes a grpc:// Try with the payload as a google.protobuf.Struct
// and the protocol as metadata (rosen-txn-id, rosen-branch-id,
// rosen-txn-phase: try, twist-transaction-id, traceparent: the context's trace
// when WithTraceparent set one, else the transaction's, as confirm and cancel
// get). Its answer is read as the coordinator reads confirm's (ClassifyGRPC).
func (g *Global) tryGRPC(ctx context.Context, b Branch, payload []byte) error {
	if g.c.GRPC == nil {
		g.c.GRPC = coordinator.NewGRPCCaller(30 * time.Second)
	}
	t := &store.Txn{ID: g.ID, Headers: map[string]string{}}
	if tp := TraceparentFrom(ctx); tp != "" {
		t.Headers[coordinator.HeaderTrace] = tp
	}
	sb := &store.Branch{ID: b.ID, Confirm: store.Action{URL: b.Try, Body: payload}}
	// A malformed endpoint or a payload that is not a JSON object is a Failed outcome naming it.
	if o := g.c.GRPC.Call(ctx, t, sb, coordinator.PhaseTry); o.Result != coordinator.Done {
		return fmt.Errorf("%w: %s: %s", ErrTryFailed, b.ID, o.Detail)
	}
	return nil
}

// Commit asks the coordinator to confirm every branch and waits up to wait for the outcome.
func (g *Global) Commit(ctx context.Context, wait time.Duration) (string, error) {
	return g.finish(ctx, "/commit", wait)
}

// Abort asks the coordinator to cancel every branch and waits up to wait for the outcome.
func (g *Global) Abort(ctx context.Context, wait time.Duration) (string, error) {
	return g.finish(ctx, "/abort", wait)
}

func (g *Global) finish(ctx context.Context, what string, wait time.Duration) (string, error) {
	var out struct{ State string }
	_, err := g.c.do(ctx, http.MethodPost, g.path(what)+"?wait="+wait.String(), nil, &out)
	return out.State, err
}

// Run begins a transaction, runs fn (which calls Try on its branches), then
// commits if fn returned nil and aborts otherwise. It returns the final state
// ("committed", "aborted", or a state still in progress after wait).
func (c *Client) Run(ctx context.Context, o Options, wait time.Duration, fn func(ctx context.Context, g *Global) error) (string, error) {
	g, err := c.Begin(ctx, o)
	if err != nil {
		return "", err
	}
	if ferr := fn(ctx, g); ferr != nil {
		state, err := g.Abort(ctx, wait)
		if err != nil {
			return state, errors.Join(ferr, err)
		}
		return state, ferr
	}
	return g.Commit(ctx, wait)
}

type traceKey struct{}

// WithTraceparent makes Try calls carry this W3C traceparent.
func WithTraceparent(ctx context.Context, tp string) context.Context {
	return context.WithValue(ctx, traceKey{}, tp)
}

// TraceparentFrom returns the traceparent set by WithTraceparent.
func TraceparentFrom(ctx context.Context) string {
	s, _ := ctx.Value(traceKey{}).(string)
	return s
}
