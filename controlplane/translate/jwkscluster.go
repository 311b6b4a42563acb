package translate

import (
	"net/url"
	"strconv"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// SystemCABundle is the trust store the JWKS clusters verify an https
// jwksUri against: the Debian/Alpine bundle, present in Istio's proxy images.
const SystemCABundle = "/etc/ssl/certs/ca-certificates.crt"

// jwksURL splits a jwksUri into host, port and whether it is https; ok is
// false for anything but an absolute http(s) URL with a host.
func jwksURL(uri string) (host string, port uint32, https, ok bool) {
	u, err := url.Parse(uri)
	if err != nil || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", 0, false, false
	}
	https = u.Scheme == "https"
	port = 80
	if https {
		port = 443
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return "", 0, false, false
		}
		port = uint32(n)
	}
	return u.Hostname(), port, https, true
}

// addJWKSClusters emits, for every jwksUri of the RequestAuthentications a
// gateway enforces, the cluster jwt_authn's remote_jwks fetches it through —
// unless the host is a mesh service (a ServiceEntry, say), whose own
// outbound cluster of the same name is used, as Istio does. The cluster is
// STRICT_DNS on the URI's host and port, with TLS (SNI and a SAN check on
// the host, the system CA bundle) for https.
func addJWKSClusters(m *model.Mesh, ras []*model.RequestAuthentication, r *Resources) {
	mesh := map[string]bool{}
	for _, s := range m.Services {
		for _, p := range s.Ports {
			mesh[ClusterName(s.Host, p.Number, "")] = true
		}
	}
	done := map[string]bool{}
	for _, ra := range ras {
		for _, rule := range ra.Rules {
			name := JWKSClusterName(rule.GetJwksUri())
			if mesh[name] || done[name] {
				continue
			}
			c := JWKSCluster(rule.GetJwksUri())
			if c == nil {
				continue // not a URL: the jwt_authn filter's reference then fails validation
			}
			done[name] = true
			r.Clusters = append(r.Clusters, c)
			r.origin(KindCluster, c.Name, ra.Source)
		}
	}
}

// JWKSCluster is the DNS cluster that reaches a jwksUri's host, or nil when
// the URI is not an absolute http(s) URL.
func JWKSCluster(uri string) *clusterv3.Cluster {
	host, port, https, ok := jwksURL(uri)
	if !ok {
		return nil
	}
	name := JWKSClusterName(uri)
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
		ConnectTimeout:       durationpb.New(DefaultConnectTimeout),
		DnsLookupFamily:      clusterv3.Cluster_V4_PREFERRED,
		DnsRefreshRate:       durationpb.New(60 * time.Second),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{
				Locality: &corev3.Locality{},
				LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: socketAddress(host, port),
				}}}},
			}},
		},
	}
	if https {
		c.TransportSocket = &corev3.TransportSocket{
			Name:       TLSTransportSocketName,
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(jwksTLS(host))},
		}
	}
	return c
}

// jwksTLS verifies the JWKS server's chain against the system bundle and
// its certificate's DNS SAN against the host (Envoy checks only the chain
// unless a SAN matcher is set).
func jwksTLS(host string) *tlsv3.UpstreamTlsContext {
	return &tlsv3.UpstreamTlsContext{
		Sni: host,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: SystemCABundle}},
				MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
					SanType: tlsv3.SubjectAltNameMatcher_DNS,
					Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: host}},
				}},
			}},
		},
	}
}
