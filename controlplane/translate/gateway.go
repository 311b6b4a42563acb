package translate

import (
	"fmt"
	"sort"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// GatewaysFor returns the Gateways whose selector matches the proxy's labels
// (every selector pair present; an empty selector matches every proxy, as
// in Istio), in the mesh's order.
func GatewaysFor(m *model.Mesh, p Proxy) []*model.Gateway {
	var out []*model.Gateway
	for _, g := range m.Gateways {
		if labelsContain(p.Labels, g.Selector) {
			out = append(out, g)
		}
	}
	return out
}

// boundServer is one Gateway server on the proxy.
type boundServer struct {
	gw  *model.Gateway
	srv *model.GatewayServer
}

func isHTTPServer(s *model.GatewayServer) bool {
	switch strings.ToUpper(s.Protocol) {
	case "HTTP", "HTTP2", "GRPC", "GRPC-WEB":
		return true
	}
	return false
}

func isSimpleHTTPS(s *model.GatewayServer) bool {
	return strings.ToUpper(s.Protocol) == "HTTPS" && s.TLS != nil &&
		strings.ToUpper(s.TLS.Mode) == "SIMPLE" && s.TLS.CredentialName != ""
}

// HTTPSRouteName is Istio's route config name for an HTTPS server.
func HTTPSRouteName(g *model.Gateway, s *model.GatewayServer) string {
	return fmt.Sprintf("https.%d.%s.%s.%s", s.Port, s.PortName, g.Name, g.Namespace)
}

func buildGateway(m *model.Mesh, p Proxy, r *Resources) {
	ix := newIndex(m)
	pf := PolicyFilters(m, p)
	addJWKSClusters(m, RequestAuthenticationsFor(m, p), r)
	byPort := map[uint32][]boundServer{}
	for _, g := range GatewaysFor(m, p) {
		for i := range g.Servers {
			s := &g.Servers[i]
			byPort[s.Port] = append(byPort[s.Port], boundServer{g, s})
		}
	}
	secrets := map[string]bool{}
	for _, port := range sortedPorts(byPort) {
		var chains []*listenerv3.FilterChain
		var plain []boundServer
		var tls bool
		var first *model.Gateway
		for _, b := range byPort[port] {
			if first == nil {
				first = b.gw
			}
			switch {
			case isHTTPServer(b.srv):
				plain = append(plain, b)
			case isSimpleHTTPS(b.srv):
				name := HTTPSRouteName(b.gw, b.srv)
				r.Routes = append(r.Routes, gatewayRouteConfig(m, ix, name, port, []boundServer{b}, r))
				r.origin(KindRoute, name, b.gw.Source)
				chains = append(chains, httpsChain(port, name, b, pf))
				secrets[b.srv.TLS.CredentialName] = true
				tls = true
			}
		}
		if len(plain) > 0 {
			name := fmt.Sprintf("http.%d", port)
			r.Routes = append(r.Routes, gatewayRouteConfig(m, ix, name, port, plain, r))
			r.origin(KindRoute, name, plain[0].gw.Source)
			hcm := HTTPConnectionManager(fmt.Sprintf("outbound_0.0.0.0_%d", port), name, Gateway)
			hcm.HttpFilters = withPolicyFilters(pf, hcm.HttpFilters)
			chains = append([]*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{hcmFilter(hcm)}}}, chains...)
		}
		if len(chains) == 0 {
			continue
		}
		l := socketListener(port, chains)
		if tls {
			l.ListenerFilters = []*listenerv3.ListenerFilter{{
				Name:       "envoy.filters.listener.tls_inspector",
				ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspectorv3.TlsInspector{})},
			}}
		}
		r.Listeners = append(r.Listeners, l)
		r.origin(KindListener, l.Name, first.Source)
	}
	for _, s := range m.Secrets {
		if secrets[s.Name] {
			r.Secrets = append(r.Secrets, Secret(s))
			r.origin(KindSecret, s.Name, s.Source)
		}
	}
}

func sortedPorts[V any](m map[uint32]V) []uint32 {
	out := make([]uint32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// httpsChain terminates TLS for the server's hosts (SNI) and routes over RDS.
func httpsChain(port uint32, rds string, b boundServer, pf []*hcmv3.HttpFilter) *listenerv3.FilterChain {
	var sni []string
	for _, h := range b.srv.Hosts {
		_, host := splitServerHost(h)
		if host != "*" && !contains(sni, host) {
			sni = append(sni, host)
		}
	}
	sort.Strings(sni)
	hcm := HTTPConnectionManager(fmt.Sprintf("outbound_0.0.0.0_%d", port), rds, Gateway)
	hcm.HttpFilters = withPolicyFilters(pf, hcm.HttpFilters)
	return &listenerv3.FilterChain{
		FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: sni},
		Filters:          []*listenerv3.Filter{hcmFilter(hcm)},
		TransportSocket: &corev3.TransportSocket{
			Name:       TLSTransportSocketName,
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(DownstreamTLS(b.srv.TLS))},
		},
	}
}

// splitServerHost splits "ns/host" (namespace "*" when absent).
func splitServerHost(h string) (ns, host string) {
	if i := strings.IndexByte(h, '/'); i >= 0 {
		return h[:i], h[i+1:]
	}
	return "*", h
}

// vsVisible applies a server host's namespace part to a VirtualService.
func vsVisible(ns string, g *model.Gateway, vs *model.VirtualService) bool {
	switch ns {
	case "*":
		return true
	case ".":
		return vs.Namespace == g.Namespace
	}
	return vs.Namespace == ns
}

// vhostBuild collects one virtual host of a gateway route config.
type vhostBuild struct {
	host       string
	vs         map[*model.VirtualService]string // → gateway key it was bound through
	requireTLS bool
}

// gatewayRouteConfig builds the virtual hosts of the given servers: one per
// (server host × bound VirtualService host), named <host>:<port>, merging
// VirtualServices in mesh order (namespace/name) and route order.
func gatewayRouteConfig(m *model.Mesh, ix index, name string, port uint32, servers []boundServer, r *Resources) *routev3.RouteConfiguration {
	vhosts := map[string]*vhostBuild{}
	get := func(host string) *vhostBuild {
		key := strings.ToLower(host)
		if vhosts[key] == nil {
			vhosts[key] = &vhostBuild{host: key, vs: map[*model.VirtualService]string{}}
		}
		return vhosts[key]
	}
	for _, b := range servers {
		redirect := b.srv.TLS != nil && b.srv.TLS.HTTPSRedirect
		for _, sh := range b.srv.Hosts {
			ns, host := splitServerHost(sh)
			bound := false
			for _, vs := range m.VirtualServices {
				if !contains(vs.Gateways, b.gw.Key()) || !vsVisible(ns, b.gw, vs) {
					continue
				}
				for _, h := range vs.Hosts {
					if HostMatches(h, host) {
						vb := get(moreSpecific(h, host))
						if _, ok := vb.vs[vs]; !ok {
							vb.vs[vs] = b.gw.Key()
						}
						vb.requireTLS = vb.requireTLS || redirect
						bound = true
					}
				}
			}
			if !bound && redirect {
				get(host).requireTLS = true
			}
		}
	}
	rc := &routev3.RouteConfiguration{Name: name, IgnorePortInHostMatching: false}
	hasWildcard := false
	for _, key := range sortedKeys(vhosts) {
		vb := vhosts[key]
		vh := &routev3.VirtualHost{Name: HostPort(vb.host, port), Domains: domainsFor([]string{vb.host}, port)}
		if vb.requireTLS {
			vh.RequireTls = routev3.VirtualHost_ALL
		}
		vi := len(rc.VirtualHosts)
		for _, vs := range m.VirtualServices {
			gwKey, ok := vb.vs[vs]
			if !ok {
				continue
			}
			for i := range vs.HTTP {
				opts := RouteOptions{Kind: Gateway, Port: port, Policies: ix.policy, Gateway: gwKey, Namespace: vs.Namespace}
				rls := RouteRateLimits(m, vs, &vs.HTTP[i])
				for _, rt := range Routes(&vs.HTTP[i], opts) {
					if len(rls) > 0 && rt.GetRoute() != nil {
						rt.GetRoute().RateLimits = rls
					}
					r.Origins[fmt.Sprintf("%s#virtual_hosts[%d].routes[%d]", OriginKey(KindRoute, name), vi, len(vh.Routes))] = vs.Source
					vh.Routes = append(vh.Routes, rt)
				}
			}
		}
		if vb.host == "*" {
			hasWildcard = true
		}
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	if !hasWildcard {
		rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{
			Name: fmt.Sprintf("blackhole:%d", port), Domains: []string{"*"}, Routes: []*routev3.Route{notFoundRoute()},
		})
	}
	return rc
}
