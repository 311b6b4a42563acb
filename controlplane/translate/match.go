package translate

import (
	"sort"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
)

// RouteMatch converts one Istio HTTPMatchRequest (nil: match everything) to
// an Envoy RouteMatch, as Istio does: uri exact → path, prefix → prefix,
// regex → safe_regex, no uri → prefix "/"; method, authority and scheme
// become the :method, :authority and :scheme pseudo-headers.
func RouteMatch(in *networking.HTTPMatchRequest) *routev3.RouteMatch {
	out := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	if in == nil {
		return out
	}
	switch u := in.GetUri().GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		out.PathSpecifier = &routev3.RouteMatch_Path{Path: u.Exact}
	case *networking.StringMatch_Prefix:
		out.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: u.Prefix}
	case *networking.StringMatch_Regex:
		out.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: regexMatcher(u.Regex)}
	}
	if in.GetIgnoreUriCase() {
		out.CaseSensitive = wrapperspb.Bool(false)
	}
	for _, name := range sortedKeys(in.GetHeaders()) {
		out.Headers = append(out.Headers, HeaderMatcher(name, in.GetHeaders()[name], false))
	}
	for _, name := range sortedKeys(in.GetWithoutHeaders()) {
		out.Headers = append(out.Headers, HeaderMatcher(name, in.GetWithoutHeaders()[name], true))
	}
	if in.GetMethod() != nil {
		out.Headers = append(out.Headers, HeaderMatcher(":method", in.GetMethod(), false))
	}
	if in.GetAuthority() != nil {
		out.Headers = append(out.Headers, HeaderMatcher(":authority", in.GetAuthority(), false))
	}
	if in.GetScheme() != nil {
		out.Headers = append(out.Headers, HeaderMatcher(":scheme", in.GetScheme(), false))
	}
	for _, name := range sortedKeys(in.GetQueryParams()) {
		out.QueryParameters = append(out.QueryParameters, QueryParameterMatcher(name, in.GetQueryParams()[name]))
	}
	return out
}

// HeaderMatcher matches one header; an empty StringMatch means "present"
// (Istio's convention), invert turns it into a withoutHeaders match.
func HeaderMatcher(name string, m *networking.StringMatch, invert bool) *routev3.HeaderMatcher {
	h := &routev3.HeaderMatcher{Name: name, InvertMatch: invert}
	if sm := StringMatcher(m); sm != nil {
		h.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: sm}
	} else {
		h.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
	}
	return h
}

// QueryParameterMatcher matches one query parameter (empty match: present).
func QueryParameterMatcher(name string, m *networking.StringMatch) *routev3.QueryParameterMatcher {
	q := &routev3.QueryParameterMatcher{Name: name}
	if sm := StringMatcher(m); sm != nil {
		q.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: sm}
	} else {
		q.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}
	}
	return q
}

// StringMatcher converts an Istio StringMatch; nil when it has no match type.
func StringMatcher(m *networking.StringMatch) *matcherv3.StringMatcher {
	switch t := m.GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: t.Exact}}
	case *networking.StringMatch_Prefix:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: t.Prefix}}
	case *networking.StringMatch_Regex:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: regexMatcher(t.Regex)}}
	}
	return nil
}

func regexMatcher(re string) *matcherv3.RegexMatcher {
	return &matcherv3.RegexMatcher{Regex: re}
}

// matchesPort reports whether a match entry applies to a listener port
// (Istio's HTTPMatchRequest.port; 0 means any port).
func matchesPort(m *networking.HTTPMatchRequest, port uint32) bool {
	return m.GetPort() == 0 || port == 0 || m.GetPort() == port
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
