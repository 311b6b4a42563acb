package translate

import (
	"fmt"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacconfv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	security "istio.io/api/security/v1beta1"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// RBACFilterName is Envoy's RBAC filter (one instance for DENY, one for ALLOW).
const RBACFilterName = "envoy.filters.http.rbac"

// RBACFilter translates the ALLOW or DENY AuthorizationPolicies of a proxy
// into one RBAC filter, with Istio's semantics: a rule matches when any of
// its from, any of its to and all of its when match; a policy without rules
// matches nothing (so an ALLOW policy without rules denies everything).
// Request principals ("iss/sub"), audiences and claims are read from the
// payload jwt_authn writes to its metadata (rbacjwt.go).
func RBACFilter(action string, aps []*model.AuthorizationPolicy) *hcmv3.HttpFilter {
	if len(aps) == 0 {
		return nil
	}
	rbac := &rbacconfv3.RBAC{Action: rbacconfv3.RBAC_ALLOW, Policies: map[string]*rbacconfv3.Policy{}}
	if action == model.ActionDeny {
		rbac.Action = rbacconfv3.RBAC_DENY
	}
	for _, ap := range aps {
		for i, r := range ap.Rules {
			rbac.Policies[fmt.Sprintf("ns[%s]-policy[%s]-rule[%d]", ap.Namespace, ap.Name, i)] = rbacPolicy(r)
		}
	}
	name := RBACFilterName
	if action == model.ActionDeny {
		name += ".deny"
	}
	return httpFilter(name, mustAny(&rbacv3.RBAC{Rules: rbac}))
}

func rbacPolicy(r *security.Rule) *rbacconfv3.Policy {
	p := &rbacconfv3.Policy{}
	for _, t := range r.GetTo() {
		p.Permissions = append(p.Permissions, operation(t.GetOperation()))
	}
	if len(p.Permissions) == 0 {
		p.Permissions = []*rbacconfv3.Permission{{Rule: &rbacconfv3.Permission_Any{Any: true}}}
	}
	var when []*rbacconfv3.Principal
	for _, c := range r.GetWhen() {
		when = append(when, condition(c)...)
	}
	for _, f := range r.GetFrom() {
		p.Principals = append(p.Principals, andIDs(append(source(f.GetSource()), when...)))
	}
	if len(p.Principals) == 0 {
		p.Principals = []*rbacconfv3.Principal{andIDs(when)}
	}
	return p
}

func andIDs(ids []*rbacconfv3.Principal) *rbacconfv3.Principal {
	switch len(ids) {
	case 0:
		return &rbacconfv3.Principal{Identifier: &rbacconfv3.Principal_Any{Any: true}}
	case 1:
		return ids[0]
	}
	return &rbacconfv3.Principal{Identifier: &rbacconfv3.Principal_AndIds{AndIds: &rbacconfv3.Principal_Set{Ids: ids}}}
}

func orIDs(ids []*rbacconfv3.Principal) *rbacconfv3.Principal {
	if len(ids) == 1 {
		return ids[0]
	}
	return &rbacconfv3.Principal{Identifier: &rbacconfv3.Principal_OrIds{OrIds: &rbacconfv3.Principal_Set{Ids: ids}}}
}

func notID(id *rbacconfv3.Principal) *rbacconfv3.Principal {
	return &rbacconfv3.Principal{Identifier: &rbacconfv3.Principal_NotId{NotId: id}}
}

// principalField adds "any of values" and "none of notValues" for one field.
func principalField(out []*rbacconfv3.Principal, values, notValues []string, one func(string) *rbacconfv3.Principal) []*rbacconfv3.Principal {
	mk := func(vs []string) *rbacconfv3.Principal {
		ids := make([]*rbacconfv3.Principal, 0, len(vs))
		for _, v := range vs {
			ids = append(ids, one(v))
		}
		return orIDs(ids)
	}
	if len(values) > 0 {
		out = append(out, mk(values))
	}
	if len(notValues) > 0 {
		out = append(out, notID(mk(notValues)))
	}
	return out
}

func source(s *security.Source) []*rbacconfv3.Principal {
	var out []*rbacconfv3.Principal
	out = principalField(out, s.GetRequestPrincipals(), s.GetNotRequestPrincipals(), requestPrincipal)
	out = principalField(out, s.GetIpBlocks(), s.GetNotIpBlocks(), func(v string) *rbacconfv3.Principal {
		return &rbacconfv3.Principal{Identifier: &rbacconfv3.Principal_DirectRemoteIp{DirectRemoteIp: cidr(v)}}
	})
	return principalField(out, s.GetRemoteIpBlocks(), s.GetNotRemoteIpBlocks(), func(v string) *rbacconfv3.Principal {
		return &rbacconfv3.Principal{Identifier: &rbacconfv3.Principal_RemoteIp{RemoteIp: cidr(v)}}
	})
}

func condition(c *security.Condition) []*rbacconfv3.Principal {
	key := c.GetKey()
	var one func(string) *rbacconfv3.Principal
	switch {
	case strings.HasPrefix(key, "request.headers["):
		h := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(key, "request.headers["), "]"))
		one = func(v string) *rbacconfv3.Principal {
			return &rbacconfv3.Principal{Identifier: &rbacconfv3.Principal_Header{Header: &routev3.HeaderMatcher{
				Name: h, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: stringMatch(v, false)},
			}}}
		}
	case key == "source.ip":
		one = func(v string) *rbacconfv3.Principal {
			return &rbacconfv3.Principal{Identifier: &rbacconfv3.Principal_DirectRemoteIp{DirectRemoteIp: cidr(v)}}
		}
	case key == "remote.ip":
		one = func(v string) *rbacconfv3.Principal {
			return &rbacconfv3.Principal{Identifier: &rbacconfv3.Principal_RemoteIp{RemoteIp: cidr(v)}}
		}
	case key == "request.auth.principal":
		one = requestPrincipal
	case key == "request.auth.audiences":
		one = func(v string) *rbacconfv3.Principal { return jwtClaim([]string{"aud"}, v) }
	case key == "request.auth.presenter":
		one = func(v string) *rbacconfv3.Principal { return jwtClaim([]string{"azp"}, v) }
	default: // request.auth.claims[...] (istio.CheckRules allows nothing else)
		path := ClaimPath(key)
		one = func(v string) *rbacconfv3.Principal { return jwtClaim(path, v) }
	}
	return principalField(nil, c.GetValues(), c.GetNotValues(), one)
}

func operation(o *security.Operation) *rbacconfv3.Permission {
	var and []*rbacconfv3.Permission
	field := func(values, notValues []string, one func(string) *rbacconfv3.Permission) {
		mk := func(vs []string) *rbacconfv3.Permission {
			ps := make([]*rbacconfv3.Permission, 0, len(vs))
			for _, v := range vs {
				ps = append(ps, one(v))
			}
			if len(ps) == 1 {
				return ps[0]
			}
			return &rbacconfv3.Permission{Rule: &rbacconfv3.Permission_OrRules{OrRules: &rbacconfv3.Permission_Set{Rules: ps}}}
		}
		if len(values) > 0 {
			and = append(and, mk(values))
		}
		if len(notValues) > 0 {
			and = append(and, &rbacconfv3.Permission{Rule: &rbacconfv3.Permission_NotRule{NotRule: mk(notValues)}})
		}
	}
	header := func(name string, ci bool) func(string) *rbacconfv3.Permission {
		return func(v string) *rbacconfv3.Permission {
			return &rbacconfv3.Permission{Rule: &rbacconfv3.Permission_Header{Header: &routev3.HeaderMatcher{
				Name: name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: stringMatch(v, ci)},
			}}}
		}
	}
	field(o.GetHosts(), o.GetNotHosts(), header(":authority", true))
	field(o.GetMethods(), o.GetNotMethods(), header(":method", false))
	field(o.GetPaths(), o.GetNotPaths(), func(v string) *rbacconfv3.Permission {
		return &rbacconfv3.Permission{Rule: &rbacconfv3.Permission_UrlPath{UrlPath: &matcherv3.PathMatcher{
			Rule: &matcherv3.PathMatcher_Path{Path: stringMatch(v, false)},
		}}}
	})
	field(o.GetPorts(), o.GetNotPorts(), func(v string) *rbacconfv3.Permission {
		n, _ := strconv.ParseUint(v, 10, 32)
		return &rbacconfv3.Permission{Rule: &rbacconfv3.Permission_DestinationPort{DestinationPort: uint32(n)}}
	})
	switch len(and) {
	case 0:
		return &rbacconfv3.Permission{Rule: &rbacconfv3.Permission_Any{Any: true}}
	case 1:
		return and[0]
	}
	return &rbacconfv3.Permission{Rule: &rbacconfv3.Permission_AndRules{AndRules: &rbacconfv3.Permission_Set{Rules: and}}}
}

// stringMatch is Istio's value syntax: "*" any non-empty, "x*" prefix,
// "*x" suffix, otherwise exact.
func stringMatch(v string, ignoreCase bool) *matcherv3.StringMatcher {
	m := &matcherv3.StringMatcher{IgnoreCase: ignoreCase}
	switch {
	case v == "*":
		m.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: ".+"}}
		m.IgnoreCase = false
	case strings.HasSuffix(v, "*"):
		m.MatchPattern = &matcherv3.StringMatcher_Prefix{Prefix: strings.TrimSuffix(v, "*")}
	case strings.HasPrefix(v, "*"):
		m.MatchPattern = &matcherv3.StringMatcher_Suffix{Suffix: strings.TrimPrefix(v, "*")}
	default:
		m.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: v}
	}
	return m
}

func cidr(v string) *corev3.CidrRange {
	addr, bits, ok := strings.Cut(v, "/")
	n := uint64(32)
	if strings.Contains(addr, ":") {
		n = 128
	}
	if ok {
		n, _ = strconv.ParseUint(bits, 10, 32)
	}
	return &corev3.CidrRange{AddressPrefix: addr, PrefixLen: wrapperspb.UInt32(uint32(n))}
}
