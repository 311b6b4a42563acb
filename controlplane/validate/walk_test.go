package validate_test

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

// TestWalkReachesEveryCheckedPlace: the type-directed walk skips fields
// that cannot hold a checked message; these cases put checked messages in
// rarely used places (a rewrite, retry headers, a hash policy, a typed
// config inside a map of Any) and expect each found, at its exact path.
func TestWalkReachesEveryCheckedPlace(t *testing.T) {
	bad := func() *matcherv3.RegexMatcher { return &matcherv3.RegexMatcher{Regex: "(("} }
	const rc = `vs.yaml: VirtualService istio-system/shop: virtual_hosts[0].routes[0].`
	const msg = `: RouteConfiguration "http.80": regex "((" does not compile as RE2: error parsing regexp: missing closing ): ` + "`((`"
	cases := []struct {
		name   string
		mutate func(t *testing.T, r *translate.Resources)
		want   string
	}{
		{"regex rewrite", func(t *testing.T, r *translate.Resources) {
			firstRoute(r).GetRoute().RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: bad(), Substitution: "/"}
		}, rc + "route.regex_rewrite.pattern.regex" + msg},
		{"retriable request headers", func(t *testing.T, r *translate.Resources) {
			firstRoute(r).GetRoute().RetryPolicy = &routev3.RetryPolicy{RetriableRequestHeaders: []*routev3.HeaderMatcher{{}, {
				Name: "x", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
					MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: bad()}}}}}}
		}, rc + "route.retry_policy.retriable_request_headers[1].string_match.safe_regex.regex" + msg},
		{"hash policy header rewrite", func(t *testing.T, r *translate.Resources) {
			firstRoute(r).GetRoute().HashPolicy = []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
				Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: "x", RegexRewrite: &matcherv3.RegexMatchAndSubstitute{Pattern: bad()}}}}}
		}, rc + "route.hash_policy[0].header.regex_rewrite.pattern.regex" + msg},
		{"cluster named inside a typed config in a map of Any", func(t *testing.T, r *translate.Resources) {
			a, err := anypb.New(&jwtv3.PerRouteConfig{RequirementSpecifier: &jwtv3.PerRouteConfig_RequirementName{RequirementName: "r"}})
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := anypb.New(&jwtv3.JwtAuthentication{Providers: map[string]*jwtv3.JwtProvider{"p": {
				JwksSourceSpecifier: &jwtv3.JwtProvider_RemoteJwks{RemoteJwks: &jwtv3.RemoteJwks{HttpUri: &corev3.HttpUri{
					Uri: "https://idp/jwks", HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: "nowhere"}, Timeout: nil}}}}}})
			if err != nil {
				t.Fatal(err)
			}
			firstRoute(r).TypedPerFilterConfig = map[string]*anypb.Any{"a.jwt": a, "b.any": cfg}
		}, rc + "typed_per_filter_config[b.any].providers[p].remote_jwks.http_uri.cluster: RouteConfiguration \"http.80\": cluster \"nowhere\" does not exist (neither an xDS cluster nor a bootstrap cluster)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := gatewayResources(t)
			tc.mutate(t, r)
			var got []string
			for _, fe := range model.AsFieldErrors(validate.Resources(r)) {
				got = append(got, fe.Error())
			}
			found := false
			for _, g := range got {
				found = found || g == tc.want
			}
			if !found {
				t.Errorf("errors:\n%s\nwant among them:\n%s", strings.Join(got, "\n"), tc.want)
			}
		})
	}
}
