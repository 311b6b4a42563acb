package istio

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

// grpcCodes are the status names Istio accepts for a gRPC abort.
var grpcCodes = map[string]bool{
	"OK": true, "CANCELLED": true, "UNKNOWN": true, "INVALID_ARGUMENT": true, "DEADLINE_EXCEEDED": true,
	"NOT_FOUND": true, "ALREADY_EXISTS": true, "PERMISSION_DENIED": true, "RESOURCE_EXHAUSTED": true,
	"FAILED_PRECONDITION": true, "ABORTED": true, "OUT_OF_RANGE": true, "UNIMPLEMENTED": true,
	"INTERNAL": true, "UNAVAILABLE": true, "DATA_LOSS": true, "UNAUTHENTICATED": true,
}

// redirectCodes are the codes Envoy's redirect action can send.
var redirectCodes = map[uint32]bool{301: true, 302: true, 303: true, 307: true, 308: true}

// checkHTTPRoute reports the leaf values of an HTTP route that Istio's
// validation rejects and Envoy (or grpc-go) would refuse.
func (b *builder) checkHTTPRoute(o *config.Object, field string, r *networking.HTTPRoute) {
	for j, m := range r.GetMatch() {
		f := fmt.Sprintf("%s.match[%d]", field, j)
		b.checkStringMatch(o, f+".uri", m.GetUri())
		b.checkStringMatch(o, f+".scheme", m.GetScheme())
		b.checkStringMatch(o, f+".method", m.GetMethod())
		b.checkStringMatch(o, f+".authority", m.GetAuthority())
		for _, name := range sortedKeys(m.GetHeaders()) {
			if name == "" {
				b.errorf(o, f+".headers", "empty header name")
			}
			b.checkStringMatch(o, fmt.Sprintf("%s.headers[%q]", f, name), m.GetHeaders()[name])
		}
		for _, name := range sortedKeys(m.GetWithoutHeaders()) {
			b.checkStringMatch(o, fmt.Sprintf("%s.withoutHeaders[%q]", f, name), m.GetWithoutHeaders()[name])
		}
		for _, name := range sortedKeys(m.GetQueryParams()) {
			b.checkStringMatch(o, fmt.Sprintf("%s.queryParams[%q]", f, name), m.GetQueryParams()[name])
		}
		if m.GetPort() > 65535 {
			b.errorf(o, f+".port", "port %d out of range 1-65535", m.GetPort())
		}
	}
	b.checkDuration(o, field+".timeout", r.GetTimeout())
	if rt := r.GetRetries(); rt != nil {
		if rt.GetAttempts() < 0 {
			b.errorf(o, field+".retries.attempts", "must not be negative")
		}
		b.checkDuration(o, field+".retries.perTryTimeout", rt.GetPerTryTimeout())
		b.checkDuration(o, field+".retries.backoff", rt.GetBackoff())
	}
	if rw := r.GetRewrite(); rw != nil {
		if rw.GetUri() != "" && rw.GetUriRegexRewrite() != nil {
			b.errorf(o, field+".rewrite", "only one of uri or uriRegexRewrite can be set")
		}
		if rr := rw.GetUriRegexRewrite(); rr != nil {
			b.checkRegex(o, field+".rewrite.uriRegexRewrite.match", rr.GetMatch())
		}
		if r.GetRedirect() != nil {
			b.errorf(o, field+".rewrite", "rewrite cannot be used with redirect")
		}
	}
	if rd := r.GetRedirect(); rd != nil && rd.GetRedirectCode() != 0 && !redirectCodes[rd.GetRedirectCode()] {
		b.errorf(o, field+".redirect.redirectCode", "code %d: want 301, 302, 303, 307 or 308", rd.GetRedirectCode())
	}
	if dr := r.GetDirectResponse(); dr != nil && (dr.GetStatus() < 200 || dr.GetStatus() > 599) {
		b.errorf(o, field+".directResponse.status", "status %d must be between 200 and 599", dr.GetStatus())
	}
	b.checkFault(o, field+".fault", r.GetFault())
	b.checkHeaderOps(o, field+".headers", r.GetHeaders())
	for j, d := range r.GetRoute() {
		if d.GetHeaders() != nil { // the path is built only when there is something to check
			b.checkHeaderOps(o, fmt.Sprintf("%s.route[%d].headers", field, j), d.GetHeaders())
		}
	}
	if c := r.GetCorsPolicy(); c != nil {
		for k, m := range c.GetAllowOrigins() {
			b.checkStringMatch(o, fmt.Sprintf("%s.corsPolicy.allowOrigins[%d]", field, k), m)
		}
		b.checkDuration(o, field+".corsPolicy.maxAge", c.GetMaxAge())
	}
}

func (b *builder) checkFault(o *config.Object, field string, f *networking.HTTPFaultInjection) {
	if f == nil {
		return
	}
	if f.GetDelay() == nil && f.GetAbort() == nil {
		b.errorf(o, field, "delay or abort is required")
	}
	if d := f.GetDelay(); d != nil {
		if p := d.GetPercentage(); p != nil {
			b.checkPercent(o, field+".delay.percentage.value", p.GetValue())
		}
		if p := d.GetPercent(); p < 0 || p > 100 {
			b.errorf(o, field+".delay.percent", "percentage %d must be between 0 and 100", p)
		}
		switch {
		case d.GetExponentialDelay() != nil:
			b.errorf(o, field+".delay.exponentialDelay", "not supported; use fixedDelay")
		case d.GetFixedDelay() == nil:
			b.errorf(o, field+".delay.fixedDelay", "required")
		default:
			b.checkDuration(o, field+".delay.fixedDelay", d.GetFixedDelay())
		}
	}
	if a := f.GetAbort(); a != nil {
		if p := a.GetPercentage(); p != nil {
			b.checkPercent(o, field+".abort.percentage.value", p.GetValue())
		}
		switch t := a.GetErrorType().(type) {
		case *networking.HTTPFaultInjection_Abort_HttpStatus:
			if t.HttpStatus < 200 || t.HttpStatus > 599 {
				b.errorf(o, field+".abort.httpStatus", "status %d must be between 200 and 599", t.HttpStatus)
			}
		case *networking.HTTPFaultInjection_Abort_GrpcStatus:
			if !grpcCodes[t.GrpcStatus] {
				b.errorf(o, field+".abort.grpcStatus", "unknown gRPC status %q (want a code name such as UNAVAILABLE)", t.GrpcStatus)
			}
		case *networking.HTTPFaultInjection_Abort_Http2Error:
			b.errorf(o, field+".abort.http2Error", "not supported; use httpStatus or grpcStatus")
		default:
			b.errorf(o, field+".abort", "httpStatus or grpcStatus is required")
		}
	}
}

func (b *builder) checkStringMatch(o *config.Object, field string, m *networking.StringMatch) {
	if m == nil {
		return
	}
	if re, ok := m.GetMatchType().(*networking.StringMatch_Regex); ok {
		b.checkRegex(o, field+".regex", re.Regex)
	}
}

// checkRegex compiles a regex as RE2 (Go's regexp is RE2), as Envoy will.
func (b *builder) checkRegex(o *config.Object, field, re string) {
	if re == "" {
		b.errorf(o, field, "empty regex")
		return
	}
	if err := b.compileRegex(re); err != nil {
		if errors.Is(err, validate.ErrRegexTooComplex) {
			b.errorf(o, field, "%v", err)
			return
		}
		b.errorf(o, field, "invalid RE2 regex: %v", err)
	}
}

// headerToken is RFC 7230's token: what a header name may be made of.
var headerToken = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")

// checkHeaderOps rejects header manipulations Envoy refuses (":"-prefixed
// pseudo-headers and Host may not be modified) and names that are not HTTP
// tokens, as Istio's validation does.
func (b *builder) checkHeaderOps(o *config.Object, field string, h *networking.Headers) {
	check := func(f string, op *networking.Headers_HeaderOperations) {
		if op == nil {
			return
		}
		names := func(kind string, ns []string) {
			for _, n := range ns {
				nf := fmt.Sprintf("%s.%s[%q]", f, kind, n)
				switch {
				case n == "":
					b.errorf(o, f+"."+kind, "empty header name")
				case strings.HasPrefix(n, ":") || strings.EqualFold(n, "host"):
					b.errorf(o, nf, "header %q may not be modified (pseudo-headers and Host are not editable; use rewrite.authority for Host)", n)
				case !headerToken.MatchString(n):
					b.errorf(o, nf, "header name %q is not a valid HTTP token", n)
				}
			}
		}
		names("set", sortedKeys(op.GetSet()))
		names("add", sortedKeys(op.GetAdd()))
		if rm := op.GetRemove(); len(rm) > 0 {
			names("remove", rm)
		}
	}
	if h == nil {
		return
	}
	check(field+".request", h.GetRequest())
	check(field+".response", h.GetResponse())
}
