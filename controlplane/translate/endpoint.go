package translate

import (
	"sort"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// Endpoints returns the load assignments of the named clusters, sorted and
// de-duplicated, without translating anything else (endpoint-only updates).
// Names that are not outbound clusters of a STATIC service are skipped.
func Endpoints(m *model.Mesh, clusters []string) []*endpointv3.ClusterLoadAssignment {
	ix := newIndex(m)
	names := append([]string(nil), clusters...)
	sort.Strings(names)
	var out []*endpointv3.ClusterLoadAssignment
	for i, name := range names {
		if i > 0 && names[i-1] == name {
			continue
		}
		host, portNum, subset, ok := ParseClusterName(name)
		s := ix.services[host]
		if !ok || s == nil || s.Resolution != model.ResolutionStatic {
			continue
		}
		for _, p := range s.Ports {
			if p.Number == portNum && (subset == "" || hasSubset(s, subset)) {
				out = append(out, LoadAssignment(s, p, subset))
			}
		}
	}
	return out
}

func hasSubset(s *model.Service, name string) bool {
	for _, sub := range s.Subsets {
		if sub.Name == name {
			return true
		}
	}
	return false
}

// LoadAssignment builds the EDS resource of one service port and subset:
// endpoints whose labels contain the subset's, grouped by locality (sorted),
// each locality weighted by the sum of its endpoint weights (grpc-go drops
// localities of weight 0), every locality present even when empty-named.
func LoadAssignment(s *model.Service, port model.ServicePort, subset string) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: ClusterName(s.Host, port.Number, subset)}
	cla.Endpoints = localityEndpoints(selectEndpoints(s, subset), port, s.Resolution == model.ResolutionDNS)
	return cla
}

func selectEndpoints(s *model.Service, subset string) []model.Endpoint {
	var labels map[string]string
	if subset != "" {
		for _, sub := range s.Subsets {
			if sub.Name == subset {
				labels = sub.Labels
			}
		}
	}
	var out []model.Endpoint
	for _, ep := range s.Endpoints {
		if labelsContain(ep.Labels, labels) {
			out = append(out, ep)
		}
	}
	return out
}

// labelsContain reports whether every pair of want is in have.
func labelsContain(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func localityEndpoints(eps []model.Endpoint, port model.ServicePort, dns bool) []*endpointv3.LocalityLbEndpoints {
	groups := map[model.Locality][]model.Endpoint{}
	for _, ep := range eps {
		groups[ep.Locality] = append(groups[ep.Locality], ep)
	}
	locs := make([]model.Locality, 0, len(groups))
	for l := range groups {
		locs = append(locs, l)
	}
	sort.Slice(locs, func(i, j int) bool {
		a, b := locs[i], locs[j]
		if a.Region != b.Region {
			return a.Region < b.Region
		}
		if a.Zone != b.Zone {
			return a.Zone < b.Zone
		}
		return a.SubZone < b.SubZone
	})
	var out []*endpointv3.LocalityLbEndpoints
	for _, l := range locs {
		group := groups[l]
		sort.SliceStable(group, func(i, j int) bool { return group[i].Address < group[j].Address })
		lle := &endpointv3.LocalityLbEndpoints{Locality: &corev3.Locality{Region: l.Region, Zone: l.Zone, SubZone: l.SubZone}}
		var total uint32
		for _, ep := range group {
			w := ep.Weight
			if w == 0 {
				w = 1
			}
			total += w
			lle.LbEndpoints = append(lle.LbEndpoints, lbEndpoint(ep, endpointPort(ep, port), w, dns))
		}
		lle.LoadBalancingWeight = wrapperspb.UInt32(total)
		out = append(out, lle)
	}
	return out
}

// endpointPort is the workload port for a service port: by name, else the
// service port number.
func endpointPort(ep model.Endpoint, port model.ServicePort) uint32 {
	if p, ok := ep.Ports[port.Name]; ok && port.Name != "" && p != 0 {
		return p
	}
	return port.Number
}

func lbEndpoint(ep model.Endpoint, port, weight uint32, dns bool) *endpointv3.LbEndpoint {
	health := corev3.HealthStatus_HEALTHY
	switch {
	case dns:
		health = corev3.HealthStatus_UNKNOWN
	case ep.Draining:
		health = corev3.HealthStatus_DRAINING
	case !ep.Healthy:
		health = corev3.HealthStatus_UNHEALTHY
	}
	return &endpointv3.LbEndpoint{
		HostIdentifier:      &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(ep.Address, port)}},
		HealthStatus:        health,
		LoadBalancingWeight: wrapperspb.UInt32(weight),
		Metadata:            endpointMetadata(ep),
	}
}

// EndpointMetadataNamespace is the filter_metadata key under which an
// endpoint's origin is published ({"cluster": "<cluster id>"}), for access
// logs, tap and operators reading a config dump.
const EndpointMetadataNamespace = "rosen"

// endpointMetadata says which Kubernetes cluster an endpoint lives in; nil
// for endpoints without one, so single-cluster output is unchanged.
func endpointMetadata(ep model.Endpoint) *corev3.Metadata {
	if ep.ClusterID == "" {
		return nil
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		EndpointMetadataNamespace: {Fields: map[string]*structpb.Value{"cluster": structpb.NewStringValue(ep.ClusterID)}},
	}}
}

func socketAddress(addr string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// dnsAssignment is the inline assignment of a STRICT_DNS cluster: the
// endpoints' addresses (host names), or the service host itself.
func dnsAssignment(s *model.Service, port model.ServicePort, subset string) *endpointv3.ClusterLoadAssignment {
	eps := selectEndpoints(s, subset)
	if len(eps) == 0 {
		eps = []model.Endpoint{{Address: s.Host, Healthy: true}}
	}
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: ClusterName(s.Host, port.Number, subset),
		Endpoints:   localityEndpoints(eps, port, true),
	}
}

// logicalDNSAssignment is what grpc-go accepts for a DNS cluster: exactly one
// locality with one endpoint (the first endpoint address, or the host).
func logicalDNSAssignment(s *model.Service, port model.ServicePort, subset string) *endpointv3.ClusterLoadAssignment {
	eps := selectEndpoints(s, subset)
	ep := model.Endpoint{Address: s.Host, Healthy: true}
	if len(eps) > 0 {
		ep = eps[0]
		ep.Locality = model.Locality{}
	}
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: ClusterName(s.Host, port.Number, subset),
		Endpoints:   localityEndpoints([]model.Endpoint{ep}, port, true),
	}
}
