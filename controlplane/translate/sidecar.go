package translate

import (
	"fmt"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// isHTTPPort reports whether a service port speaks HTTP (unnamed protocols
// are treated as HTTP, as a small mesh without protocol sniffing must).
func isHTTPPort(p model.ServicePort) bool {
	switch strings.ToUpper(p.Protocol) {
	case "", "HTTP", "HTTP2", "GRPC", "GRPC-WEB":
		return true
	}
	return false
}

// buildSidecar emits Istio's outbound shape: a listener 0.0.0.0_<port> per
// HTTP service port number, routing over RDS "<port>" whose virtual hosts
// are the services with that port (short names for the proxy's namespace).
func buildSidecar(m *model.Mesh, p Proxy, r *Resources) {
	ix := newIndex(m)
	type svcPort struct {
		s    *model.Service
		port model.ServicePort
	}
	byPort := map[uint32][]svcPort{}
	for _, s := range m.Services {
		for _, port := range s.Ports {
			if isHTTPPort(port) {
				byPort[port.Number] = append(byPort[port.Number], svcPort{s, port})
			}
		}
	}
	for _, num := range sortedPorts(byPort) {
		name := fmt.Sprint(num)
		rc := &routev3.RouteConfiguration{Name: name}
		for i, sp := range byPort[num] {
			names := append([]string{sp.s.Host}, shortHosts(sp.s.Host, p.Namespace, true)...)
			rc.VirtualHosts = append(rc.VirtualHosts, meshVirtualHost(m, ix, name, i, HostPort(sp.s.Host, num), sp.s, sp.port, names, Sidecar, r))
		}
		r.Routes = append(r.Routes, rc)
		r.origin(KindRoute, name, byPort[num][0].s.Source)
		hcm := HTTPConnectionManager(fmt.Sprintf("outbound_0.0.0.0_%d", num), name, Sidecar)
		l := socketListener(num, []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{hcmFilter(hcm)}}})
		r.Listeners = append(r.Listeners, l)
		r.origin(KindListener, l.Name, byPort[num][0].s.Source)
	}
}
