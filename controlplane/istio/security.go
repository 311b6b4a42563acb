package istio

import (
	"net/url"
	"strconv"
	"strings"

	security "istio.io/api/security/v1beta1"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// RootNamespace is Istio's root namespace: a policy there without a selector
// applies to every proxy.
const RootNamespace = "istio-system"

func workloads(o *config.Object, sel map[string]string) model.WorkloadSelector {
	return model.WorkloadSelector{Namespace: o.Namespace, Selector: sel, MeshWide: o.Namespace == RootNamespace && len(sel) == 0}
}

// buildSecurity resolves RequestAuthentication, AuthorizationPolicy and
// RateLimitPolicy objects (already sorted by kind, namespace, name).
func (b *builder) buildSecurity(vss []*model.VirtualService) *model.Security {
	sec := &model.Security{}
	for _, o := range b.policies {
		switch s := o.Spec.(type) {
		case *security.RequestAuthentication:
			b.requestAuthentication(sec, o, s)
		case *security.AuthorizationPolicy:
			b.authorizationPolicy(sec, o, s)
		case *config.RateLimitPolicySpec:
			b.rateLimitPolicy(sec, o, s, vss)
		}
	}
	if len(sec.RequestAuthentications)+len(sec.AuthorizationPolicies)+len(sec.RateLimits) == 0 {
		return nil
	}
	return sec
}

func (b *builder) requestAuthentication(sec *model.Security, o *config.Object, s *security.RequestAuthentication) {
	if len(s.GetTargetRefs()) > 0 || s.GetTargetRef() != nil {
		b.errorf(o, "spec.targetRefs", "targetRef is not supported; use selector")
		return
	}
	for i, r := range s.GetJwtRules() {
		if r.GetIssuer() == "" {
			b.errorf(o, fieldf("spec.jwtRules[%d].issuer", i), "required")
		}
		if r.GetJwks() != "" {
			b.errorf(o, fieldf("spec.jwtRules[%d].jwks", i), "inline jwks is not supported; use jwksUri")
		}
		b.checkJWKSURI(o, fieldf("spec.jwtRules[%d].jwksUri", i), r.GetJwksUri())
		b.checkDuration(o, fieldf("spec.jwtRules[%d].timeout", i), r.GetTimeout())
	}
	sec.RequestAuthentications = append(sec.RequestAuthentications, &model.RequestAuthentication{
		Name: o.Name, Namespace: o.Namespace, Workloads: workloads(o, s.GetSelector().GetMatchLabels()),
		Rules: s.GetJwtRules(), Source: o.Source(),
	})
}

// checkJWKSURI requires an absolute http(s) jwksUri with a host: gateways
// fetch keys with Envoy's remote_jwks from it, and Rosen does not resolve
// OIDC discovery for them (Istio does, in istiod).
func (b *builder) checkJWKSURI(o *config.Object, field, uri string) {
	if uri == "" {
		b.errorf(o, field, "required: Rosen's gateways fetch keys from jwksUri (OIDC discovery is not resolved for them)")
		return
	}
	u, err := url.Parse(uri)
	switch {
	case err != nil:
		b.errorf(o, field, "not a URL: %v", err)
	case u.Scheme != "https" && u.Scheme != "http":
		b.errorf(o, field, "scheme %q: only https and http are fetched", u.Scheme)
	case u.Hostname() == "":
		b.errorf(o, field, "no host in %q", uri)
	case u.Port() != "":
		if n, err := strconv.ParseUint(u.Port(), 10, 16); err != nil || n == 0 {
			b.errorf(o, field, "port %q is not 1-65535", u.Port())
		}
	}
}

func (b *builder) authorizationPolicy(sec *model.Security, o *config.Object, s *security.AuthorizationPolicy) {
	if len(s.GetTargetRefs()) > 0 || s.GetTargetRef() != nil {
		b.errorf(o, "spec.targetRefs", "targetRef is not supported; use selector")
		return
	}
	ap := &model.AuthorizationPolicy{
		Name: o.Name, Namespace: o.Namespace, Workloads: workloads(o, s.GetSelector().GetMatchLabels()),
		Action: s.GetAction().String(), Rules: s.GetRules(), Source: o.Source(),
	}
	switch ap.Action {
	case model.ActionCustom:
		ap.Provider = s.GetProvider().GetName()
		if ap.Provider != model.RosenAuthzProvider {
			b.errorf(o, "spec.provider.name", "unknown CUSTOM provider %q (Rosen serves %q)", ap.Provider, model.RosenAuthzProvider)
			return
		}
	case model.ActionAudit:
		b.errorf(o, "spec.action", "AUDIT is not supported")
		return
	}
	if errs := CheckRules(ap.Rules); len(errs) > 0 {
		for _, e := range errs {
			b.errorf(o, e.field, "%s", e.msg)
		}
		return
	}
	sec.AuthorizationPolicies = append(sec.AuthorizationPolicies, ap)
}

func (b *builder) rateLimitPolicy(sec *model.Security, o *config.Object, s *config.RateLimitPolicySpec, vss []*model.VirtualService) {
	ns := s.TargetRef.Namespace
	if ns == "" {
		ns = o.Namespace
	}
	key := ns + "/" + s.TargetRef.Name
	var vs *model.VirtualService
	for _, v := range vss {
		if v.Namespace+"/"+v.Name == key {
			vs = v
		}
	}
	if vs == nil {
		b.errorf(o, "spec.targetRef", "VirtualService %s not found", key)
		return
	}
	if r := s.TargetRef.Route; r != "" {
		found := false
		for _, h := range vs.HTTP {
			found = found || h.Name == r
		}
		if !found {
			b.errorf(o, "spec.targetRef.route", "VirtualService %s has no http route named %q", key, r)
			return
		}
	}
	for _, other := range sec.RateLimits {
		if other.Domain != s.Domain {
			b.errorf(o, "spec.domain", "domain %q differs from %q of RateLimitPolicy %s/%s: gateways send one domain", s.Domain, other.Domain, other.Namespace, other.Name)
			return
		}
	}
	rl := &model.RateLimit{
		Name: o.Name, Namespace: o.Namespace, VirtualService: key, Route: s.TargetRef.Route,
		Domain: s.Domain, FailureModeDeny: s.FailureModeDeny, Source: o.Source(),
	}
	for _, d := range s.Descriptors {
		var md model.RateLimitDescriptor
		for _, e := range d.Entries {
			md.Entries = append(md.Entries, rateLimitEntry(e))
		}
		rl.Descriptors = append(rl.Descriptors, md)
	}
	sec.RateLimits = append(sec.RateLimits, rl)
}

func rateLimitEntry(e config.RateLimitEntry) model.RateLimitEntry {
	switch {
	case e.RemoteAddress != nil:
		return model.RateLimitEntry{Kind: model.EntryRemoteAddress, Key: "remote_address"}
	case e.RequestHeader != nil:
		return model.RateLimitEntry{Kind: model.EntryRequestHeader, Key: e.RequestHeader.Key, Header: strings.ToLower(e.RequestHeader.Header)}
	case e.GenericKey != nil:
		key := e.GenericKey.Key
		if key == "" {
			key = "generic_key"
		}
		return model.RateLimitEntry{Kind: model.EntryGenericKey, Key: key, Value: e.GenericKey.Value}
	case e.Path != nil:
		return model.RateLimitEntry{Kind: model.EntryPath, Key: e.Path.Key}
	case e.Method != nil:
		return model.RateLimitEntry{Kind: model.EntryMethod, Key: e.Method.Key}
	}
	return model.RateLimitEntry{Kind: model.EntryJWTClaim, Key: e.JWTClaim.Key, Claim: e.JWTClaim.Claim}
}
