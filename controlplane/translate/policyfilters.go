package translate

import (
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// RosenCluster is the bootstrap cluster that reaches Rosen's gRPC port (the
// xDS cluster, named as in Istio's bootstrap); ext_authz and the rate-limit
// filter call back through it.
const RosenCluster = "xds-grpc"

// selects reports whether a policy's workload selector picks the proxy.
func selects(w model.WorkloadSelector, p Proxy) bool {
	if w.MeshWide {
		return true
	}
	return w.Namespace == p.Namespace && labelsContain(p.Labels, w.Selector)
}

// RequestAuthenticationsFor returns the RequestAuthentications that select the proxy.
func RequestAuthenticationsFor(m *model.Mesh, p Proxy) []*model.RequestAuthentication {
	if m.Security == nil {
		return nil
	}
	var ras []*model.RequestAuthentication
	for _, ra := range m.Security.RequestAuthentications {
		if selects(ra.Workloads, p) {
			ras = append(ras, ra)
		}
	}
	return ras
}

// PolicyFilters returns the gateway's policy HTTP filters, in the order
// jwt_authn → rbac (DENY, then ALLOW) → ext_authz → ratelimit; they go in
// front of cors, fault and router.
func PolicyFilters(m *model.Mesh, p Proxy) []*hcmv3.HttpFilter {
	if m.Security == nil {
		return nil
	}
	var out []*hcmv3.HttpFilter
	if f := JWTAuthnFilter(RequestAuthenticationsFor(m, p)); f != nil {
		out = append(out, f)
	}
	byAction := map[string][]*model.AuthorizationPolicy{}
	for _, ap := range m.Security.AuthorizationPolicies {
		if selects(ap.Workloads, p) {
			byAction[ap.Action] = append(byAction[ap.Action], ap)
		}
	}
	for _, action := range []string{model.ActionDeny, model.ActionAllow} {
		if f := RBACFilter(action, byAction[action]); f != nil {
			out = append(out, f)
		}
	}
	if len(byAction[model.ActionCustom]) > 0 {
		out = append(out, ExtAuthzFilter())
	}
	if f := RateLimitFilter(m.Security.RateLimits); f != nil {
		out = append(out, f)
	}
	return out
}

// withPolicyFilters puts the policy filters in front of the HCM's own.
func withPolicyFilters(pf, filters []*hcmv3.HttpFilter) []*hcmv3.HttpFilter {
	if len(pf) == 0 {
		return filters
	}
	return append(append(make([]*hcmv3.HttpFilter, 0, len(pf)+len(filters)), pf...), filters...)
}
