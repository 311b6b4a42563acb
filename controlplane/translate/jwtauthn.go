package translate

import (
	"fmt"
	"net/url"
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

// JWKSClusterName names the cluster that fetches a jwksUri, as Istio does.
func JWKSClusterName(jwksURI string) string {
	u, err := url.Parse(jwksURI)
	if err != nil {
		return "outbound|jwks|invalid"
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	return fmt.Sprintf("outbound|%s||%s", port, u.Hostname())
}

// JWTAuthnFilter is Istio's RequestAuthentication translation: one provider
// per jwtRule (named origins-<i>), and a requirement that accepts a request
// with no token or with a valid token from any provider (missing tokens are
// left to AuthorizationPolicy; invalid ones are rejected with 401). Verified
// payloads go to the filter metadata under the issuer, for RBAC and Rego.
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
				PayloadInMetadata:    r.GetIssuer(),
				FromParams:           r.GetFromParams(),
			}
			for _, h := range r.GetFromHeaders() {
				p.FromHeaders = append(p.FromHeaders, &jwtv3.JwtHeader{Name: h.GetName(), ValuePrefix: h.GetPrefix()})
			}
			uri := r.GetJwksUri()
			if uri == "" {
				uri = r.GetIssuer() + "/.well-known/jwks.json"
			}
			p.JwksSourceSpecifier = &jwtv3.JwtProvider_RemoteJwks{RemoteJwks: &jwtv3.RemoteJwks{
				HttpUri: &corev3.HttpUri{
					Uri: uri, HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: JWKSClusterName(uri)},
					Timeout: durationpb.New(5 * time.Second),
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
