// Package authz is Rosen's external authorization service
// (envoy.service.auth.v3.Authorization/Check): it evaluates Rego policies
// with OPA's Go SDK on an input shaped as the OPA-Envoy plugin shapes it, and
// always answers with a decision — a policy that errors, times out or
// returns garbage is an explicit deny, never a gRPC error that an Envoy with
// failure_mode_allow could turn into an allow.
package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"

	"github.com/rosenmesh/rosen/policy/folderwatch"
)

// TokenVerifier verifies the request's bearer token (policy/jwt implements
// it). It returns nil claims and no error when the request carries no token
// for any configured issuer.
type TokenVerifier interface {
	Verify(ctx context.Context, headers map[string]string, query url.Values) (map[string]any, error)
}

// Options configure a Server.
type Options struct {
	Log      *zap.Logger
	Registry prometheus.Registerer
	// Timeout bounds one policy evaluation (default 100ms); past it the
	// request is denied.
	Timeout time.Duration
	// DryRun evaluates and logs policies but allows what they deny.
	DryRun bool
	Input  InputOptions
	// Tokens, when set, verifies JWTs before the policy; verified claims are
	// input.jwt and an invalid token is a 401 deny.
	Tokens TokenVerifier
	// RingSize is how many decisions Decisions keeps (default 1000).
	RingSize int
}

// Server answers ext_authz Check calls.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	log     *zap.Logger
	opts    Options
	policy  atomic.Pointer[Policy]
	ring    *Ring
	metrics *metrics
	claims  *claimsValues
	// rejected is the policy folder's current refusal (Rejection).
	rejected folderwatch.LastRejection
}

// New returns a Server with no policy: until SetPolicy, every request is denied.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 100 * time.Millisecond
	}
	if opts.RingSize <= 0 {
		opts.RingSize = 1000
	}
	return &Server{
		log:     opts.Log.Named("authz"),
		opts:    opts,
		ring:    NewRing(opts.RingSize),
		claims:  newClaimsValues(10000),
		metrics: newMetrics(opts.Registry),
	}
}

// Register adds the Authorization service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { authv3.RegisterAuthorizationServer(g, s) }

// SetPolicy puts a compiled policy in force.
func (s *Server) SetPolicy(p *Policy) { s.policy.Store(p) }

// Policy returns the policy in force (nil before the first one).
func (s *Server) Policy() *Policy { return s.policy.Load() }

// Decisions returns the last decisions, newest first.
func (s *Server) Decisions() []Entry { return s.ring.Entries() }

// Check decides one request. It never returns an error.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	growStack()
	start := time.Now()
	d, e, result := s.decide(ctx, req)
	e.Latency = time.Since(start)
	e.Time = start
	e.Allowed, e.Status, e.Reason = d.Allowed, d.Status, d.Reason
	e = e.clipped()
	s.ring.Add(e)
	s.metrics.observe(result, e.Latency)
	if ce := s.log.Check(logLevel(result), "decision"); ce != nil {
		ce.Write(zap.String("request_id", e.RequestID), zap.String("method", e.Method),
			zap.String("path", e.Path), zap.String("canonical_path", e.CanonicalPath),
			zap.Bool("allowed", d.Allowed), zap.Int("status", d.Status), zap.String("reason", e.Reason),
			zap.String("policy_version", e.PolicyVersion), zap.Bool("dry_run", e.DryRun),
			zap.String("result", result), zap.Duration("latency", e.Latency))
	}
	return Response(d), nil
}

func logLevel(result string) zapcore.Level {
	switch result {
	case "error", "bad_input":
		return zapcore.WarnLevel
	}
	return zapcore.DebugLevel
}

func deny(status int, reason string) Decision {
	return Decision{Allowed: false, Status: status, Reason: reason}
}

// decide returns the decision, the log entry and the metrics result label.
func (s *Server) decide(ctx context.Context, req *authv3.CheckRequest) (Decision, Entry, string) {
	h := req.GetAttributes().GetRequest().GetHttp()
	headers := foldHeaders(h)
	e := Entry{RequestID: headers["x-request-id"], Method: h.GetMethod(), Host: h.GetHost(), Path: h.GetPath()}
	p := s.policy.Load()
	if p == nil {
		return deny(http.StatusForbidden, "no policy loaded"), e, "error"
	}
	e.PolicyVersion = p.Version
	input, err := buildInput(req, headers, s.opts.Input)
	if err != nil {
		return deny(http.StatusBadRequest, err.Error()), e, "bad_input"
	}
	e.CanonicalPath, _ = input["canonical_path"].(string)
	input["version"] = versionValue // the same document, converted once
	if s.opts.Tokens != nil {
		_, query := SplitPath(h.GetPath())
		q, _ := url.ParseQuery(query) // already validated by BuildInput
		claims, err := s.opts.Tokens.Verify(ctx, headers, q)
		if err != nil {
			d := deny(http.StatusUnauthorized, err.Error())
			d.Headers = []Header{{Key: "www-authenticate", Value: `Bearer error="invalid_token"`}}
			d.Body = "Jwt verification fails"
			return d, e, "unauthenticated"
		}
		if claims != nil {
			cv, err := s.claims.value(claims)
			if err != nil {
				return deny(http.StatusUnauthorized, "token claims: "+err.Error()), e, "unauthenticated"
			}
			input["jwt"] = cv
			e.Subject, _ = claims["sub"].(string)
		}
	}
	d, result := s.evaluate(ctx, p, input)
	if s.opts.DryRun {
		e.DryRun, e.WouldAllow = true, d.Allowed
		if !d.Allowed {
			return Decision{Allowed: true, Status: http.StatusOK, Reason: "dry-run: policy denied: " + d.Reason}, e, result
		}
	}
	return d, e, result
}

func (s *Server) evaluate(ctx context.Context, p *Policy, input map[string]any) (Decision, string) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	v, err := p.Eval(ctx, input)
	if err != nil {
		reason := err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			reason = fmt.Sprintf("policy did not finish within %s", s.opts.Timeout)
		}
		return deny(http.StatusForbidden, reason), "error"
	}
	d, err := DecodeResult(v)
	if err != nil {
		return deny(http.StatusForbidden, err.Error()), "error"
	}
	if d.Allowed {
		return d, "allow"
	}
	if d.Reason == "" {
		d.Reason = "denied by policy"
	}
	return d, "deny"
}
