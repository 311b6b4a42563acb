package translate

import (
	"strings"

	rbacconfv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// ClaimPath splits "request.auth.claims[a][b]" (or "request.auth.claims[a]")
// into the claim path ["a", "b"]; Istio's nested-claim syntax.
func ClaimPath(key string) []string {
	rest := strings.TrimPrefix(key, "request.auth.claims")
	var out []string
	for strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			break
		}
		out = append(out, rest[1:end])
		rest = rest[end+1:]
	}
	return out
}

// requestPrincipal matches Istio's "iss/sub" (split at the last "/", since
// the issuer is usually a URL), with "*" for any, "*x" and "x*" for suffix
// and prefix, against the iss and sub claims of the verified payload — what
// Istio generates since its authn filter was removed.
func requestPrincipal(v string) *rbacconfv3.Principal {
	idx := strings.LastIndex(v, "/")
	found := idx >= 0
	iss, sub := v, ""
	if found {
		iss, sub = v[:idx], v[idx+1:]
	}
	anyValue := stringMatch("*", false)
	var mi, ms *matcherv3.StringMatcher
	switch {
	case v == "*":
		mi, ms = anyValue, anyValue
	case strings.HasPrefix(v, "*"):
		if !found {
			mi, ms = anyValue, stringMatch(v, false)
			break
		}
		mi, ms = stringMatch(iss, false), exact(sub)
	case strings.HasSuffix(v, "*"):
		if !found {
			mi, ms = stringMatch(v, false), anyValue
			break
		}
		mi, ms = exact(iss), stringMatch(sub, false)
	default:
		mi, ms = exact(iss), exact(sub)
	}
	return andIDs([]*rbacconfv3.Principal{
		payloadMetadata([]string{"iss"}, &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: mi}}),
		payloadMetadata([]string{"sub"}, &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: ms}}),
	})
}

func exact(v string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}
}

// jwtClaim matches a claim (at path) that is the value or, for a list claim
// such as aud or groups, contains it.
func jwtClaim(path []string, value string) *rbacconfv3.Principal {
	one := &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: stringMatch(value, false)}}
	return payloadMetadata(path, &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_OrMatch{OrMatch: &matcherv3.OrMatcher{
		ValueMatchers: []*matcherv3.ValueMatcher{
			one,
			{MatchPattern: &matcherv3.ValueMatcher_ListMatch{ListMatch: &matcherv3.ListMatcher{MatchPattern: &matcherv3.ListMatcher_OneOf{OneOf: one}}}},
		},
	}}})
}

// payloadMetadata matches jwt_authn's metadata at payload → path.
func payloadMetadata(path []string, v *matcherv3.ValueMatcher) *rbacconfv3.Principal {
	segs := make([]*matcherv3.MetadataMatcher_PathSegment, 0, len(path)+1)
	for _, k := range append([]string{JWTPayloadMetadataKey}, path...) {
		segs = append(segs, &matcherv3.MetadataMatcher_PathSegment{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: k}})
	}
	return &rbacconfv3.Principal{Identifier: &rbacconfv3.Principal_Metadata{Metadata: &matcherv3.MetadataMatcher{
		Filter: JWTAuthnFilterName, Path: segs, Value: v,
	}}}
}
