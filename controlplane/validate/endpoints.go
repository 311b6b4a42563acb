package validate

import (
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
)

// MeshEndpoints is the gate for an endpoint-only change: it builds the
// ClusterLoadAssignment of every EDS cluster of m (translate.MeshEndpoints;
// listeners, routes and clusters are not translated) and checks them as
// Resources does: ValidateAll (endpoint and locality weights ≥ 1, addresses,
// ports) and the cross-checks grpc-go applies (every locality set and
// non-empty). It is only sound when m differs from a mesh that passed Mesh
// in nothing but EDS endpoints (model.StructureHash is equal).
func MeshEndpoints(m *model.Mesh) error {
	if m == nil {
		return model.Errors{model.Errorf(model.Source{}, "", "no mesh")}
	}
	c := &checker{res: translate.MeshEndpoints(m)}
	c.protos()
	c.endpoints()
	return c.errs.Err()
}

// ServiceEndpoints is MeshEndpoints for the services of the given hosts
// only: the gate for a change that moved nothing but those services'
// endpoints (istio.RebuildEndpoints).
func ServiceEndpoints(m *model.Mesh, hosts []string) error {
	if m == nil {
		return model.Errors{model.Errorf(model.Source{}, "", "no mesh")}
	}
	if hosts == nil {
		hosts = []string{}
	}
	c := &checker{res: translate.ServiceEndpoints(m, hosts)}
	c.protos()
	c.endpoints()
	return c.errs.Err()
}
