package translate

import (
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// index is a read-only lookup over one Mesh, built per Translate call and
// passed by value (translation keeps no state between calls).
type index struct {
	services map[string]*model.Service
	mesh     meshHosts // meshhosts.go
}

func newIndex(m *model.Mesh) index {
	ix := index{services: make(map[string]*model.Service, len(m.Services)), mesh: newMeshHosts(m)}
	for _, s := range m.Services {
		ix.services[s.Host] = s
	}
	return ix
}

// policy returns the traffic policy of an outbound cluster, port-level
// settings applied; nil when none.
func (ix index) policy(cluster string) *networking.TrafficPolicy {
	host, port, subset, ok := ParseClusterName(cluster)
	if !ok {
		return nil
	}
	s := ix.services[host]
	if s == nil {
		return nil
	}
	return EffectivePolicy(s, port, subset)
}

// EffectivePolicy is the policy of a service port and subset: the subset's
// merged policy (or the service's), with the matching portLevelSettings
// entry overriding load balancer, connection pool and outlier detection.
func EffectivePolicy(s *model.Service, port uint32, subset string) *networking.TrafficPolicy {
	p := s.Policy
	if subset != "" {
		for i := range s.Subsets {
			if s.Subsets[i].Name == subset && s.Subsets[i].Policy != nil {
				p = s.Subsets[i].Policy
			}
		}
	}
	if p == nil {
		return nil
	}
	for _, pl := range p.GetPortLevelSettings() {
		if pl.GetPort().GetNumber() != port {
			continue
		}
		out := proto.Clone(p).(*networking.TrafficPolicy)
		out.PortLevelSettings = nil
		if pl.GetLoadBalancer() != nil {
			out.LoadBalancer = pl.GetLoadBalancer()
		}
		if pl.GetConnectionPool() != nil {
			out.ConnectionPool = pl.GetConnectionPool()
		}
		if pl.GetOutlierDetection() != nil {
			out.OutlierDetection = pl.GetOutlierDetection()
		}
		return out
	}
	return p
}
