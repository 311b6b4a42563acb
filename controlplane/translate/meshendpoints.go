package translate

import (
	"github.com/rosenmesh/rosen/controlplane/model"
)

// MeshEndpoints builds the ClusterLoadAssignment of every EDS cluster any
// proxy can receive (every port × (no subset + each subset) of every service
// served over EDS), with Origins naming each service. Nothing else is translated:
// it is what an endpoint-only change must check (validate.MeshEndpoints)
// when the rest of the mesh is known to be unchanged.
func MeshEndpoints(m *model.Mesh) *Resources {
	return ServiceEndpoints(m, nil)
}

// ServiceEndpoints is MeshEndpoints for the services of the given hosts
// only (every service when hosts is nil): what a change of those services'
// endpoints must check.
func ServiceEndpoints(m *model.Mesh, hosts []string) *Resources {
	r := &Resources{Origins: map[string]model.Source{}}
	if m == nil {
		return r
	}
	var only map[string]bool
	if hosts != nil {
		only = make(map[string]bool, len(hosts))
		for _, h := range hosts {
			only[h] = true
		}
	}
	for _, s := range m.Services {
		if only != nil && !only[s.Host] {
			continue
		}
		if s.Resolution == model.ResolutionDNS || s.Resolution == model.ResolutionNone {
			continue // inlined in the cluster, or no endpoints at all (Cluster)
		}
		subsets := append([]string{""}, subsetNames(s)...)
		for _, port := range s.Ports {
			for _, sub := range subsets {
				cla := LoadAssignment(s, port, sub)
				r.Endpoints = append(r.Endpoints, cla)
				r.origin(KindEndpoint, cla.GetClusterName(), s.Source)
			}
		}
	}
	r.sort()
	return r
}
