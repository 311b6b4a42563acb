package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Well-known filter names.
const (
	RouterFilterName = "envoy.filters.http.router"
	HCMFilterName    = "envoy.filters.network.http_connection_manager"
)

// HTTPFilters is the HCM filter chain: cors, fault, router for Envoy; fault,
// router for proxyless gRPC (grpc-go knows only fault, rbac and router, and
// wants router last).
func HTTPFilters(kind ProxyKind) []*hcmv3.HttpFilter {
	var out []*hcmv3.HttpFilter
	if kind != Proxyless {
		out = append(out, httpFilter(CorsFilterName, mustAny(&corsv3.Cors{})))
	}
	out = append(out, httpFilter(FaultFilterName, mustAny(&faultv3.HTTPFault{})))
	return append(out, httpFilter(RouterFilterName, mustAny(&routerv3.Router{})))
}

func httpFilter(name string, cfg *anypb.Any) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: cfg}}
}

// HTTPConnectionManager fetches its routes over ADS (RDS, API v3).
func HTTPConnectionManager(statPrefix, routeConfig string, kind ProxyKind) *hcmv3.HttpConnectionManager {
	h := &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource: adsSource(), RouteConfigName: routeConfig,
		}},
		HttpFilters: HTTPFilters(kind),
	}
	if kind == Gateway {
		h.UseRemoteAddress = wrapperspb.Bool(true)
	}
	return h
}

// hcmFilter wraps an HCM as a network filter.
func hcmFilter(h *hcmv3.HttpConnectionManager) *listenerv3.Filter {
	return &listenerv3.Filter{Name: HCMFilterName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(h)}}
}

// socketListener listens on 0.0.0.0:port.
func socketListener(port uint32, chains []*listenerv3.FilterChain) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:         ListenerName(port),
		Address:      &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}},
		FilterChains: chains,
	}
}
