package runner

import (
	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/istio"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// maxIsolationRounds bounds how many times a set is rebuilt after dropping
// objects (dropping one may expose another that depended on it).
const maxIsolationRounds = 5

// Isolation makes some objects individually droppable. A file is edited and
// saved as a whole, so a bad file rejects the whole change; objects in a
// Kubernetes cluster are applied one by one by many people, so one bad
// VirtualService must not freeze the mesh: it is left out, reported, and the
// rest applies (as istiod ignores objects it cannot use).
type Isolation struct {
	// Isolatable reports whether an object may be dropped on its own.
	Isolatable func(o *config.Object) bool
	// Report receives, after every build, the problems of the objects that
	// were left out (empty when none were): the Kubernetes source writes
	// them back to the objects' status.
	Report func(errs []*model.FieldError)
}

// SetIsolation enables per-object isolation; call before Run.
func (r *Runner) SetIsolation(iso Isolation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.isolation = &iso
}

// build is istio.Build with isolation: errors that name only isolatable
// objects drop those objects and build again. Errors about any other object
// reject the set as before.
func (r *Runner) build(set *config.Set) (*model.Mesh, error) {
	r.mu.Lock()
	iso := r.isolation
	r.mu.Unlock()
	if iso == nil || iso.Isolatable == nil {
		return istio.Build(set)
	}
	var left []*model.FieldError
	defer func() {
		r.logLeftOut(left)
		if iso.Report != nil {
			iso.Report(left)
		}
	}()
	for range maxIsolationRounds {
		mesh, err := istio.Build(set)
		if err == nil {
			return mesh, nil
		}
		errs := model.AsFieldErrors(err)
		drop := map[model.Source]bool{}
		for _, o := range set.Objects {
			if iso.Isolatable(o) {
				drop[o.Source()] = false
			}
		}
		for _, fe := range errs {
			if _, ok := drop[fe.Source]; !ok {
				return nil, err // a problem outside the isolatable objects
			}
			drop[fe.Source] = true
		}
		kept := make([]*config.Object, 0, len(set.Objects))
		for _, o := range set.Objects {
			if !drop[o.Source()] {
				kept = append(kept, o)
			}
		}
		left = append(left, errs...)
		set = &config.Set{Objects: kept, Skipped: set.Skipped}
	}
	return istio.Build(set)
}

// logLeftOut logs each left-out object's problem once, when it first
// appears (a cluster change rebuilds the mesh often; the same message on
// every rebuild would drown the log).
func (r *Runner) logLeftOut(left []*model.FieldError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := make(map[string]bool, len(left))
	for _, fe := range left {
		msg := fe.Error()
		now[msg] = true
		if !r.leftOut[msg] {
			r.log.Warn("object left out of the mesh; the rest applies", zap.String("file", fe.Source.File),
				zap.String("kind", fe.Source.Kind), zap.String("resource", fe.Source.Namespace+"/"+fe.Source.Name),
				zap.String("field", fe.Field), zap.String("error", fe.Message))
		}
	}
	r.leftOut = now
}
