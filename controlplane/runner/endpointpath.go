package runner

import (
	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/istio"
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/validate"
	"github.com/rosenmesh/rosen/controlplane/xds"
)

// EndpointPublisher is a Publisher that can take a mesh differing from the
// last one only in the endpoints of some services (xds.Server does). Without
// it, the runner's endpoint path publishes with Update.
type EndpointPublisher interface {
	UpdateEndpoints(m *model.Mesh, hosts []string) error
}

var _ EndpointPublisher = (*xds.Server)(nil)

// objectKey identifies an object within a set (NewSet keeps one per key).
type objectKey struct{ kind, namespace, name string }

func keyOf(o *config.Object) objectKey { return objectKey{o.Kind, o.Namespace, o.Name} }

// accepted is what the endpoint path compares a new set with: the last set
// whose mesh was published, by key, and that mesh.
type accepted struct {
	objects map[objectKey]*config.Object
	mesh    *model.Mesh
}

func newAccepted(set *config.Set, mesh *model.Mesh) *accepted {
	a := &accepted{objects: make(map[objectKey]*config.Object, len(set.Objects)), mesh: mesh}
	for _, o := range set.Objects {
		a.objects[keyOf(o)] = o
	}
	return a
}

// endpointChanges returns the old and new versions of every object that is
// not the very same object in set and in the accepted set, and whether all
// of them are endpoint objects (istio.EndpointKind). Both sources keep an
// unchanged object's pointer from one set to the next (the file source per
// document, the Kubernetes source per informer object), so the comparison
// is by identity and costs a map lookup per object.
func (a *accepted) endpointChanges(set *config.Set) ([]*config.Object, bool) {
	var changed []*config.Object
	seen := 0
	for _, o := range set.Objects {
		p, ok := a.objects[keyOf(o)]
		if ok {
			seen++
			if p == o {
				continue
			}
			changed = append(changed, p)
		}
		if !istio.EndpointKind(o.Kind) {
			return nil, false
		}
		changed = append(changed, o)
	}
	if seen != len(a.objects) { // some objects were removed
		present := make(map[objectKey]bool, len(set.Objects))
		for _, o := range set.Objects {
			present[keyOf(o)] = true
		}
		for k, p := range a.objects {
			if present[k] {
				continue
			}
			if !istio.EndpointKind(p.Kind) {
				return nil, false
			}
			changed = append(changed, p)
		}
	}
	return changed, true
}

// applyEndpoints is the endpoint path: when set differs from the accepted
// one only in EndpointSlices and Pods, the affected services' endpoints are
// rebuilt on top of the published mesh (istio.RebuildEndpoints), only their
// load assignments are gated, and only those are published. handled is false
// when the path does not apply (or cannot decide) and the full path must
// run; a set it rejects is rejected with the gate's errors.
func (r *Runner) applyEndpoints(set *config.Set) (handled bool, err error) {
	r.mu.Lock()
	clean := len(r.leftOut) == 0 // objects left out by isolation: only a full build may take them back
	r.mu.Unlock()
	a := r.accepted
	if a == nil || !clean {
		return false, nil
	}
	changed, ok := a.endpointChanges(set)
	if !ok {
		return false, nil
	}
	mesh, hosts, err := istio.RebuildEndpoints(a.mesh, set, changed)
	if err != nil {
		return false, nil // the full build reports it, with isolation where enabled
	}
	r.metrics.translations.WithLabelValues(ModeIncremental).Inc()
	if err := validate.ServiceEndpoints(mesh, hosts); err != nil {
		return true, err
	}
	if len(hosts) > 0 {
		if ep, ok := r.pub.(EndpointPublisher); ok {
			err = ep.UpdateEndpoints(mesh, hosts)
		} else {
			err = r.pub.Update(mesh)
		}
		if err != nil {
			return true, err
		}
	}
	r.published(set, mesh)
	return true, nil
}
