// Package translate turns the resolved mesh (controlplane/model) into Envoy v3
// resources for one proxy. Every function here is pure: no I/O, no clock, no
// globals, and outputs are sorted so that the same Mesh always gives
// byte-identical protos.
package translate

import (
	"fmt"
	"sort"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// ProxyKind is the kind of xDS client, named as in Istio's node ids.
type ProxyKind string

const (
	Gateway   ProxyKind = "router"
	Sidecar   ProxyKind = "sidecar"
	Proxyless ProxyKind = "proxyless"
)

// Proxy is what translation needs to know about the client.
type Proxy struct {
	Kind      ProxyKind
	Namespace string
	Labels    map[string]string
	// InboundPorts are the ports a proxyless gRPC server listens on (Istio's
	// POD_PORTS node metadata, ParsePodPorts); such a proxy also gets
	// server-side listeners with its RBAC (proxylessinbound.go).
	InboundPorts []uint32
}

// Resource type short names used as Origins key prefixes.
const (
	KindListener = "Listener"
	KindRoute    = "RouteConfiguration"
	KindCluster  = "Cluster"
	KindEndpoint = "ClusterLoadAssignment"
	KindSecret   = "Secret"
)

// Resources is everything one proxy receives. Each slice is sorted by name.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	Secrets   []*tlsv3.Secret
	// Origins maps "<Kind>/<name>" to the config that produced the resource.
	// Finer keys "<Kind>/<name>#<field path>" (for example
	// "RouteConfiguration/http.80#virtual_hosts[0].routes[2]") name the
	// VirtualService behind one route; validate uses the longest match.
	Origins map[string]model.Source
}

// OriginKey is the Origins key of a resource.
func OriginKey(kind, name string) string { return kind + "/" + name }

func (r *Resources) origin(kind, name string, src model.Source) {
	key := OriginKey(kind, name)
	if _, ok := r.Origins[key]; !ok {
		r.Origins[key] = src
	}
}

// Translate builds every resource for proxy p, endpoints included.
func Translate(m *model.Mesh, p Proxy) (*Resources, error) {
	return TranslateShared(m, p, nil)
}

// TranslateShared is Translate with the clusters and load assignments that
// other proxies' translations of m already built taken from sh (nil, or a
// memo of another mesh: none are). The resources are the same; they may be
// the very values given to other proxies, so they must not be modified.
func TranslateShared(m *model.Mesh, p Proxy, sh *Shared) (*Resources, error) {
	if m == nil {
		return nil, fmt.Errorf("translate: nil mesh")
	}
	r := &Resources{Origins: map[string]model.Source{}}
	switch p.Kind {
	case Gateway:
		buildGateway(m, p, r)
	case Proxyless:
		buildProxyless(m, r)
		if err := buildProxylessInbound(m, p, r); err != nil {
			return nil, err
		}
	case Sidecar:
		buildSidecar(m, p, r)
	default:
		return nil, fmt.Errorf("translate: unknown proxy kind %q", p.Kind)
	}
	addClusters(m, p.Kind, r, sh.For(m))
	r.sort()
	return r, nil
}

func (r *Resources) sort() {
	sort.Slice(r.Listeners, func(i, j int) bool { return r.Listeners[i].GetName() < r.Listeners[j].GetName() })
	sort.Slice(r.Routes, func(i, j int) bool { return r.Routes[i].GetName() < r.Routes[j].GetName() })
	sort.Slice(r.Clusters, func(i, j int) bool { return r.Clusters[i].GetName() < r.Clusters[j].GetName() })
	sort.Slice(r.Endpoints, func(i, j int) bool { return r.Endpoints[i].GetClusterName() < r.Endpoints[j].GetClusterName() })
	sort.Slice(r.Secrets, func(i, j int) bool { return r.Secrets[i].GetName() < r.Secrets[j].GetName() })
}
