package kube

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// snapshot is what one cluster contributes to the mesh right now.
type snapshot struct {
	objects  []*config.Object
	rejected []*model.FieldError // objects that could not be converted (kept out)
	modules  []ModuleObject      // objects of module kinds (modules.go)
	counts   map[string]int      // objects per kind, for /debug/clusters
}

// converted is one object's conversion, kept between snapshots.
type converted struct {
	o   *config.Object
	mod *ModuleObject
	err error
}

// snapshot reads the cluster's stores. Endpoint kinds count only while the
// cluster is synced (not dropped); objects in namespaces the discovery
// selector excludes are left out.
func (c *cluster) snapshot(selector labels.Selector) snapshot {
	c.mu.Lock()
	ws, withEndpoints := c.current, c.synced
	c.mu.Unlock()
	out := snapshot{counts: map[string]int{}}
	if ws == nil {
		return out
	}
	allowed := c.namespaces(ws, selector)
	// Informers replace an object on every change, so a cached object
	// pointer still converts to the same config object: only what changed
	// since the last snapshot is converted again.
	conv := make(map[any]converted, len(c.conv))
	defer func() { c.conv = conv }()
	for _, k := range c.kinds {
		inf := ws.informers[k.Kind]
		if inf == nil || (k.convert == nil && k.role != roleModule) || (k.role == roleEndpoints && !withEndpoints) {
			continue
		}
		for _, obj := range inf.GetStore().List() {
			cv, ok := c.conv[obj]
			if !ok {
				if k.role == roleModule {
					cv.mod, cv.err = moduleObject(&c.ref, k.Kind, obj)
				} else {
					cv.o, cv.err = k.convert(&c.ref, obj)
				}
			}
			conv[obj] = cv
			if cv.mod != nil {
				if allowed == nil || allowed[cv.mod.Namespace] {
					out.modules = append(out.modules, *cv.mod)
					out.counts[k.Kind]++
				}
				continue
			}
			o, err := cv.o, cv.err
			if err != nil {
				out.rejected = append(out.rejected, model.AsFieldErrors(err)...)
				continue
			}
			if o == nil || (allowed != nil && !allowed[o.Namespace]) {
				continue
			}
			out.objects = append(out.objects, o)
			out.counts[k.Kind]++
		}
	}
	return out
}

// namespaces returns the namespaces the selector admits, or nil for all.
func (c *cluster) namespaces(ws *watchSet, selector labels.Selector) map[string]bool {
	if selector == nil || selector.Empty() {
		return nil
	}
	allowed := map[string]bool{}
	if inf := ws.informers["Namespace"]; inf != nil {
		for _, obj := range inf.GetStore().List() {
			if ns, ok := obj.(*corev1.Namespace); ok && selector.Matches(labels.Set(ns.Labels)) {
				allowed[ns.Name] = true
			}
		}
	}
	return allowed
}

// merge joins the clusters' snapshots into one set. Services, Secrets and
// config present in several clusters are taken from the first cluster that
// has them (the primary comes first): the same Service in every cluster is
// one mesh host whose endpoints come from all of them, as in Istio.
func merge(snaps []snapshot) (*config.Set, []*model.FieldError) {
	type key struct{ kind, ns, name string }
	seen := map[key]bool{}
	var objs []*config.Object
	var rejected []*model.FieldError
	for _, s := range snaps {
		rejected = append(rejected, s.rejected...)
		for _, o := range s.objects {
			k := key{o.Kind, o.Namespace, o.Name}
			if seen[k] {
				continue
			}
			seen[k] = true
			objs = append(objs, o)
		}
	}
	set, errs := config.NewSet(objs)
	for _, e := range errs {
		rejected = append(rejected, model.AsFieldErrors(e)...)
	}
	return set, rejected
}
