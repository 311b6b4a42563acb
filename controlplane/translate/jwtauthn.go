package translate

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// JWTAuthnFilterName is Envoy's JWT authentication filter.
const JWTAuthnFilterName = "envoy.filters.http.jwt_authn"

// JWTPayloadMetadataKey is where every provider writes the verified payload
// in jwt_authn's dynamic metadata (payload_in_metadata), as Istio does since
// it dropped its own authn filter: RBAC request principals, claims and
// audiences, and rate-limit claim actions, all read
// envoy.filters.http.jwt_authn → payload → <claim>. A request carries at most
// one verified token, so one key for every issuer is unambiguous.
const JWTPayloadMetadataKey = "payload"

// JWKSClusterName names the cluster that fetches a jwksUri, as Istio does:
// outbound|<port>||<host>. A URI that is not an absolute http(s) URL gets a
// name no cluster has, so validation rejects the filter that refers to it.
func JWKSClusterName(jwksURI string) string {
	host, port, _, ok := jwksURL(jwksURI)
	if !ok {
		return "outbound|0||invalid-jwks-uri"
	}
	return ClusterName(host, port, "")
}

// DefaultJWKSFetchTimeout is Istio's jwtRules timeout default.
const DefaultJWKSFetchTimeout = 5 * time.Second

// JWTAuthnFilter is Istio's RequestAuthentication translation: one provider
// per jwtRule (named origins-<i>), and a requirement that accepts a request
// with no token or with a valid token from any provider (missing tokens are
// left to AuthorizationPolicy; invalid ones are rejected with 401). Verified
// payloads go to the filter metadata under JWTPayloadMetadataKey, for RBAC,
// rate limits and Rego. Keys are fetched by Envoy (remote_jwks) through the
// cluster addJWKSClusters emits.
func JWTAuthnFilter(ras []*model.RequestAuthentication) *hcmv3.HttpFilter {
	if len(ras) == 0 {
		return nil
	}
	cfg := &jwtv3.JwtAuthentication{Providers: map[string]*jwtv3.JwtProvider{}}
	var any []*jwtv3.JwtRequirement
	n := 0
	for _, ra := range ras {
		for _, r := range ra.Rules {
			name := fmt.Sprintf("origins-%d", n)
			n++
			p := &jwtv3.JwtProvider{
				Issuer:               r.GetIssuer(),
				Audiences:            r.GetAudiences(),
				Forward:              r.GetForwardOriginalToken(),
				ForwardPayloadHeader: r.GetOutputPayloadToHeader(),
				PayloadInMetadata:    JWTPayloadMetadataKey,
				FromParams:           r.GetFromParams(),
			}
			for _, h := range r.GetFromHeaders() {
				p.FromHeaders = append(p.FromHeaders, &jwtv3.JwtHeader{Name: h.GetName(), ValuePrefix: h.GetPrefix()})
			}
			uri := r.GetJwksUri() // required by the istio builder
			timeout := DefaultJWKSFetchTimeout
			if t := r.GetTimeout(); t != nil && t.AsDuration() > 0 {
				timeout = t.AsDuration()
			}
			p.JwksSourceSpecifier = &jwtv3.JwtProvider_RemoteJwks{RemoteJwks: &jwtv3.RemoteJwks{
				HttpUri: &corev3.HttpUri{
					Uri: uri, HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: JWKSClusterName(uri)},
					Timeout: durationpb.New(timeout),
				},
				CacheDuration: durationpb.New(5 * time.Minute),
			}}
			cfg.Providers[name] = p
			any = append(any, &jwtv3.JwtRequirement{RequiresType: &jwtv3.JwtRequirement_ProviderName{ProviderName: name}})
		}
	}
	if len(any) == 0 {
		return nil
	}
	any = append(any, &jwtv3.JwtRequirement{RequiresType: &jwtv3.JwtRequirement_AllowMissing{}})
	cfg.Rules = []*jwtv3.RequirementRule{{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		RequirementType: &jwtv3.RequirementRule_Requires{Requires: &jwtv3.JwtRequirement{
			RequiresType: &jwtv3.JwtRequirement_RequiresAny{RequiresAny: &jwtv3.JwtRequirementOrList{Requirements: any}},
		}},
	}}
	return httpFilter(JWTAuthnFilterName, mustAny(cfg))
}
