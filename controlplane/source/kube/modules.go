package kube

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// Rosen's module kinds (group rosen.dev, version v1alpha1; CRDs in
// manifests/crds/). They configure a module, not the mesh, so they never
// enter the config.Set: each goes to the module that registered a
// ModuleHandler for it.
const (
	// KindCQRSRule is one CQRS rule in the Gravity rule shape (event, table,
	// method, database, exporter, mapping, filter) for the CQRS engine.
	KindCQRSRule = "CQRSRule"
	// KindTCCPolicy holds the TCC coordinator's run-time defaults (timeouts,
	// retry policy, stuck-transaction webhook).
	KindTCCPolicy = "TCCPolicy"
)

// ModuleObject is one object of a module kind, as a module needs it.
type ModuleObject struct {
	Cluster   string          `json:"cluster"`
	Kind      string          `json:"kind"`
	Namespace string          `json:"namespace"`
	Name      string          `json:"name"`
	Spec      json.RawMessage `json:"spec"` // the object's spec, as JSON ("null" when absent)
}

// Where names the object in messages: "kube://a: CQRSRule shop/orders".
func (o ModuleObject) Where() string {
	return fmt.Sprintf("%s%s: %s %s/%s", SourcePrefix, o.Cluster, o.Kind, o.Namespace, o.Name)
}

// Refusal is why a module cannot use one of the objects it was handed.
type Refusal struct {
	Index   int    // into the objects handed to the ModuleHandler
	Field   string // path in the object, e.g. "spec.mapping[0].target"
	Message string
}

// ModuleHandler is handed every object of one module kind whenever that set
// changes (and once after the first sync, possibly empty): the primary
// cluster's first, each cluster's in namespace/name order; an object in
// several config clusters is taken from the first. It returns the objects
// the module refuses; those get Rosen's Rejected status condition and a
// Warning Event (StatusWriter) and are listed in /debug/clusters. It runs on
// the source's goroutine, so it must return quickly (apply asynchronously).
type ModuleHandler func(objs []ModuleObject) []Refusal

// moduleObject extracts a module kind's object from the informer's cache.
func moduleObject(c *clusterRef, kind string, obj any) (*ModuleObject, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnexpectedObject, obj)
	}
	spec, err := json.Marshal(u.Object["spec"])
	if err != nil {
		return nil, model.Errorf(model.Source{File: c.file(), Kind: kind, Namespace: u.GetNamespace(), Name: u.GetName()}, "spec", "%v", err)
	}
	return &ModuleObject{Cluster: c.id, Kind: kind, Namespace: u.GetNamespace(), Name: u.GetName(), Spec: spec}, nil
}

// HandleModuleKind registers the module that uses kind's objects (one per
// kind; a later call replaces the earlier). Call it before Run, or the
// objects arrive with the next change.
func (s *Source) HandleModuleKind(kind string, h ModuleHandler) error {
	if k := statusKind(kind); k == nil || k.role != roleModule {
		return fmt.Errorf("%w: %q is not a module kind (want %s or %s)", ErrUnexpectedObject, kind, KindCQRSRule, KindTCCPolicy)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handlers == nil {
		s.handlers = map[string]ModuleHandler{}
	}
	s.handlers[kind] = h
	delete(s.delivered, kind)
	return nil
}

// deliverModules hands each registered module its kind's objects when they
// changed since the last delivery, and records what the modules refuse.
func (s *Source) deliverModules(snaps []snapshot) {
	byKind := map[string][]ModuleObject{}
	type key struct{ kind, ns, name string }
	seen := map[key]bool{}
	for _, sn := range snaps {
		mods := append([]ModuleObject(nil), sn.modules...)
		sort.SliceStable(mods, func(i, j int) bool {
			if mods[i].Namespace != mods[j].Namespace {
				return mods[i].Namespace < mods[j].Namespace
			}
			return mods[i].Name < mods[j].Name
		})
		for _, m := range mods {
			k := key{m.Kind, m.Namespace, m.Name}
			if seen[k] {
				continue
			}
			seen[k] = true
			byKind[m.Kind] = append(byKind[m.Kind], m)
		}
	}
	s.mu.Lock()
	handlers := make(map[string]ModuleHandler, len(s.handlers))
	for k, h := range s.handlers {
		if prev, ok := s.delivered[k]; !ok || !sameObjects(prev, byKind[k]) {
			handlers[k] = h
		}
	}
	s.mu.Unlock()
	for kind, h := range handlers {
		objs := byKind[kind]
		refusals := h(objs)
		var rejected []*model.FieldError
		for _, r := range refusals {
			if r.Index < 0 || r.Index >= len(objs) {
				s.log.Error("module refused an object it was not handed", zap.String("kind", kind), zap.Int("index", r.Index))
				continue
			}
			o := objs[r.Index]
			fe := &model.FieldError{Source: model.Source{File: SourcePrefix + o.Cluster, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}, Field: r.Field, Message: r.Message}
			s.log.Warn("module left an object out", zap.String("object", o.Where()), zap.String("field", r.Field), zap.String("problem", r.Message))
			rejected = append(rejected, fe)
		}
		s.log.Info("module kind delivered", zap.String("kind", kind), zap.Int("objects", len(objs)), zap.Int("refused", len(rejected)))
		s.mu.Lock()
		if s.delivered == nil {
			s.delivered = map[string][]ModuleObject{}
		}
		if s.moduleRejected == nil {
			s.moduleRejected = map[string][]*model.FieldError{}
		}
		s.delivered[kind] = objs
		s.moduleRejected[kind] = rejected
		poke := s.statusPoke
		s.mu.Unlock()
		if poke != nil {
			poke()
		}
	}
}

func sameObjects(a, b []ModuleObject) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Cluster != y.Cluster || x.Kind != y.Kind || x.Namespace != y.Namespace || x.Name != y.Name || !bytes.Equal(x.Spec, y.Spec) {
			return false
		}
	}
	return true
}
