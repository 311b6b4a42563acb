package translate

import (
	"strconv"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// buildProxyless emits, for every service port, an API listener named
// host:port (the LDS name grpc-go asks for) and its route config with one
// virtual host covering the names clients dial.
func buildProxyless(m *model.Mesh, r *Resources) {
	ix := newIndex(m)
	for _, s := range m.Services {
		if s.Resolution == model.ResolutionNone {
			continue
		}
		for _, port := range s.Ports {
			name := HostPort(s.Host, port.Number)
			hcm := HTTPConnectionManager(name, name, Proxyless)
			r.Listeners = append(r.Listeners, &listenerv3.Listener{
				Name:        name,
				ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(hcm)},
			})
			r.origin(KindListener, name, s.Source)
			names := append([]string{s.Host}, shortHosts(s.Host, "", false)...)
			r.Routes = append(r.Routes, meshRouteConfig(m, ix, name, name, s, port, names, Proxyless, r))
		}
	}
}

// meshRouteConfig is a route config holding the one virtual host of a
// service port with its mesh routes (used by proxyless and by sidecars,
// which gather several of these virtual hosts into one config per port).
func meshRouteConfig(m *model.Mesh, ix index, rcName, vhName string, s *model.Service, port model.ServicePort, names []string, kind ProxyKind, r *Resources) *routev3.RouteConfiguration {
	rc := &routev3.RouteConfiguration{Name: rcName}
	rc.VirtualHosts = []*routev3.VirtualHost{meshVirtualHost(m, ix, rcName, 0, vhName, s, port, names, kind, r)}
	r.origin(KindRoute, rcName, s.Source)
	return rc
}

// meshVirtualHost gathers the routes of the VirtualServices bound to the
// mesh whose hosts cover s.Host (looked up in ix.mesh); without any,
// everything goes to the service port's default cluster.
func meshVirtualHost(m *model.Mesh, ix index, rcName string, vi int, vhName string, s *model.Service, port model.ServicePort, names []string, kind ProxyKind, r *Resources) *routev3.VirtualHost {
	vh := &routev3.VirtualHost{Name: vhName, Domains: domainsFor(names, port.Number)}
	bound := false
	for _, vs := range ix.mesh.covering(s.Host) {
		bound = true
		for i := range vs.HTTP {
			opts := RouteOptions{Kind: kind, Port: port.Number, Policies: ix.policy, Gateway: model.MeshGateway, Namespace: vs.Namespace}
			for _, rt := range Routes(&vs.HTTP[i], opts) {
				r.Origins[routeOriginKey(rcName, vi, len(vh.Routes))] = vs.Source
				vh.Routes = append(vh.Routes, rt)
			}
		}
	}
	if !bound {
		cluster := ClusterName(s.Host, port.Number, "")
		vh.Routes = []*routev3.Route{defaultRoute(cluster, HashPolicy(ix.policy(cluster)))}
	}
	return vh
}

// routeOriginKey is the Origins key of one route,
// "RouteConfiguration/<rc>#virtual_hosts[<vi>].routes[<ri>]".
func routeOriginKey(rc string, vi, ri int) string {
	return OriginKey(KindRoute, rc) + "#virtual_hosts[" + strconv.Itoa(vi) + "].routes[" + strconv.Itoa(ri) + "]"
}
