package validate_test

import (
	"strings"
	"testing"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	security "istio.io/api/security/v1beta1"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

var raSource = model.Source{File: "ra.yaml", Kind: "RequestAuthentication", Namespace: "istio-system", Name: "jwt"}

// policyMesh is mesh() with a mesh-wide RequestAuthentication, a CUSTOM
// (rosen) AuthorizationPolicy and a RateLimitPolicy: the gateway gets
// jwt_authn, ext_authz and ratelimit filters.
func policyMesh(jwksURIs ...string) *model.Mesh {
	m := mesh()
	ra := &model.RequestAuthentication{Name: "jwt", Namespace: "istio-system", Workloads: model.WorkloadSelector{Namespace: "istio-system", MeshWide: true}, Source: raSource}
	for i, u := range jwksURIs {
		ra.Rules = append(ra.Rules, &security.JWTRule{Issuer: "https://issuer" + string(rune('a'+i)), JwksUri: u})
	}
	m.Security = &model.Security{
		RequestAuthentications: []*model.RequestAuthentication{ra},
		AuthorizationPolicies: []*model.AuthorizationPolicy{{
			Name: "opa", Namespace: "istio-system", Workloads: ra.Workloads, Action: model.ActionCustom, Provider: model.RosenAuthzProvider,
			Rules: []*security.Rule{{}},
		}},
		RateLimits: []*model.RateLimit{{
			Name: "rl", Namespace: "istio-system", VirtualService: "istio-system/shop", Domain: "shop",
			Descriptors: []model.RateLimitDescriptor{{Entries: []model.RateLimitEntry{{Kind: model.EntryRemoteAddress, Key: "remote_address"}}}},
		}},
	}
	return m
}

func policyResources(t *testing.T, m *model.Mesh) *translate.Resources {
	t.Helper()
	r, err := translate.Translate(m, translate.Proxy{Kind: translate.Gateway, Labels: map[string]string{"istio": "ingressgateway"}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func errorLines(err error) string {
	var got []string
	for _, fe := range model.AsFieldErrors(err) {
		got = append(got, fe.Error())
	}
	return strings.Join(got, "\n")
}

func TestPolicyFiltersReferenceExistingClusters(t *testing.T) {
	m := policyMesh("https://auth.example.com/keys", "http://keys.internal:8080/jwks", "http://"+host+":9080/jwks")
	r := policyResources(t, m)
	if err := validate.Resources(r); err != nil {
		t.Fatalf("policy gateway does not validate: %v", err)
	}
	var names []string
	for _, c := range r.Clusters {
		names = append(names, c.GetName())
	}
	// The mesh service's own cluster serves the third jwksUri: no duplicate.
	want := "outbound|443||auth.example.com outbound|8080||keys.internal outbound|9080|v1|" + host + " outbound|9080||" + host
	if got := strings.Join(names, " "); got != want {
		t.Errorf("clusters:\n%s\nwant:\n%s", got, want)
	}
	if err := validate.Mesh(m); err != nil {
		t.Errorf("Mesh: %v", err)
	}
}

// mutateFilter unpacks the gateway's HTTP filter named name, lets mutate
// change it, and packs it back.
func mutateFilter[M proto.Message](t *testing.T, r *translate.Resources, name string, cfg M, mutate func(M)) {
	t.Helper()
	h := hcmOf(t, r.Listeners[0])
	for _, f := range h.HttpFilters {
		if f.Name != name {
			continue
		}
		if err := f.GetTypedConfig().UnmarshalTo(cfg); err != nil {
			t.Fatal(err)
		}
		mutate(cfg)
		a, err := anypb.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		f.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}
		setHCM(t, r.Listeners[0], h)
		return
	}
	t.Fatalf("no filter %s", name)
}

func TestPolicyFilterClusterRefs(t *testing.T) {
	const at = `gw.yaml: Gateway istio-system/gw: filter_chains[0].filters[0].typed_config.http_filters`
	cases := []struct {
		name   string
		mutate func(t *testing.T, r *translate.Resources)
		want   string
	}{
		{"JWKS cluster missing", func(t *testing.T, r *translate.Resources) {
			r.Clusters = r.Clusters[1:] // outbound|443||auth.example.com sorts first
		}, at + `[0].typed_config.providers[origins-0].remote_jwks.http_uri.cluster: Listener "0.0.0.0_80": cluster "outbound|443||auth.example.com" does not exist (neither an xDS cluster nor a bootstrap cluster)`},
		{"ext_authz to an unknown cluster", func(t *testing.T, r *translate.Resources) {
			mutateFilter(t, r, translate.ExtAuthzFilterName, &extauthzv3.ExtAuthz{}, func(c *extauthzv3.ExtAuthz) {
				c.GetGrpcService().GetEnvoyGrpc().ClusterName = "authz"
			})
		}, at + `[1].typed_config.grpc_service.envoy_grpc.cluster_name: Listener "0.0.0.0_80": cluster "authz" does not exist (neither an xDS cluster nor a bootstrap cluster)`},
		{"ratelimit to an unknown cluster", func(t *testing.T, r *translate.Resources) {
			mutateFilter(t, r, translate.RateLimitFilterName, &ratelimitv3.RateLimit{}, func(c *ratelimitv3.RateLimit) {
				c.GetRateLimitService().GetGrpcService().GetEnvoyGrpc().ClusterName = "rls"
			})
		}, at + `[2].typed_config.rate_limit_service.grpc_service.envoy_grpc.cluster_name: Listener "0.0.0.0_80": cluster "rls" does not exist (neither an xDS cluster nor a bootstrap cluster)`},
		{"jwt_authn cluster renamed", func(t *testing.T, r *translate.Resources) {
			mutateFilter(t, r, translate.JWTAuthnFilterName, &jwtv3.JwtAuthentication{}, func(c *jwtv3.JwtAuthentication) {
				c.Providers["origins-0"].GetRemoteJwks().GetHttpUri().HttpUpstreamType = nil
			})
		}, at + `[0].typed_config.providers[origins-0].remote_jwks.http_uri.http_upstream_type: Listener "0.0.0.0_80": value is required`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := policyResources(t, policyMesh("https://auth.example.com/keys"))
			if err := validate.Resources(r); err != nil {
				t.Fatalf("base does not validate: %v", err)
			}
			tc.mutate(t, r)
			if got := errorLines(validate.Resources(r)); got != tc.want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// A jwksUri that is not a URL never reaches a proxy: the builder rejects it,
// and if a model carries one anyway the filter's cluster does not exist.
func TestInvalidJWKSURIIsRejected(t *testing.T) {
	r := policyResources(t, policyMesh("ftp//nowhere"))
	want := `gw.yaml: Gateway istio-system/gw: filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.providers[origins-0].remote_jwks.http_uri.cluster: Listener "0.0.0.0_80": cluster "outbound|0||invalid-jwks-uri" does not exist (neither an xDS cluster nor a bootstrap cluster)`
	if got := errorLines(validate.Resources(r)); got != want {
		t.Errorf("errors:\n%s\nwant:\n%s", got, want)
	}
}
