package dump

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// listenerRefs returns the route configs (RDS) and secrets (SDS) a listener
// refers to, including an API listener's (proxyless gRPC).
func listenerRefs(l *listenerv3.Listener, routes, secrets map[string]bool) {
	if api := l.GetApiListener().GetApiListener(); api != nil {
		hcmRefs(api, routes)
	}
	chains := append([]*listenerv3.FilterChain{l.GetDefaultFilterChain()}, l.GetFilterChains()...)
	for _, fc := range chains {
		if fc == nil {
			continue
		}
		for _, f := range fc.GetFilters() {
			hcmRefs(f.GetTypedConfig(), routes)
		}
		socketRefs(fc.GetTransportSocket(), secrets)
	}
}

func hcmRefs(a *anypb.Any, routes map[string]bool) {
	if a == nil {
		return
	}
	var hcm hcmv3.HttpConnectionManager
	if a.UnmarshalTo(&hcm) != nil {
		return
	}
	if name := hcm.GetRds().GetRouteConfigName(); name != "" {
		routes[name] = true
	}
}

// clusterRefs returns the endpoints (EDS) and secrets a cluster refers to.
func clusterRefs(c *clusterv3.Cluster, endpoints, secrets map[string]bool) {
	if c.GetType() == clusterv3.Cluster_EDS {
		name := c.GetEdsClusterConfig().GetServiceName()
		if name == "" {
			name = c.GetName()
		}
		endpoints[name] = true
	}
	socketRefs(c.GetTransportSocket(), secrets)
}

// socketRefs adds the SDS secret names of a TLS transport socket.
func socketRefs(ts *corev3.TransportSocket, secrets map[string]bool) {
	a := ts.GetTypedConfig()
	if a == nil {
		return
	}
	var common *tlsv3.CommonTlsContext
	var down tlsv3.DownstreamTlsContext
	var up tlsv3.UpstreamTlsContext
	switch {
	case a.MessageIs(&down) && a.UnmarshalTo(&down) == nil:
		common = down.GetCommonTlsContext()
	case a.MessageIs(&up) && a.UnmarshalTo(&up) == nil:
		common = up.GetCommonTlsContext()
	default:
		return
	}
	for _, s := range common.GetTlsCertificateSdsSecretConfigs() {
		if s.GetName() != "" {
			secrets[s.GetName()] = true
		}
	}
	if name := common.GetValidationContextSdsSecretConfig().GetName(); name != "" {
		secrets[name] = true
	}
	if name := common.GetCombinedValidationContext().GetValidationContextSdsSecretConfig().GetName(); name != "" {
		secrets[name] = true
	}
}
