package kubeenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Applier applies YAML documents as `kubectl apply --server-side` does,
// resolving kinds through the server's discovery (CRDs included, once
// established).
type Applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// NewApplier builds an applier for cfg.
func NewApplier(cfg *rest.Config) (*Applier, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic: %w", err)
	}
	return &Applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

// Decode splits multi-document YAML into objects (empty documents skipped).
func Decode(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// Apply server-side-applies every object, retrying for up to a minute while
// a kind is not yet served (a CRD applied just before).
func (a *Applier) Apply(ctx context.Context, objs ...*unstructured.Unstructured) error {
	for _, o := range objs {
		deadline := time.Now().Add(time.Minute)
		for {
			err := a.applyOne(ctx, o)
			if err == nil {
				break
			}
			if !meta.IsNoMatchError(err) || time.Now().After(deadline) {
				return fmt.Errorf("apply %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
			}
			a.mapper.Reset()
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

func (a *Applier) applyOne(ctx context.Context, o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	var res dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := o.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		res = a.dyn.Resource(m.Resource).Namespace(ns)
	}
	_, err = res.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "rosen-test", Force: true})
	return err
}

// ApplyYAML decodes and applies documents.
func (a *Applier) ApplyYAML(ctx context.Context, data []byte) error {
	objs, err := Decode(data)
	if err != nil {
		return err
	}
	return a.Apply(ctx, objs...)
}

// MustApply applies YAML or fails the test.
func MustApply(t testing.TB, cfg *rest.Config, yaml string) {
	t.Helper()
	a, err := NewApplier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.ApplyYAML(ctx, []byte(strings.TrimSpace(yaml))); err != nil {
		t.Fatal(err)
	}
}

// Get reads the current state of obj (kind, namespace and name taken from it).
func (a *Applier) Get(ctx context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	gvk := o.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	ns := o.GetNamespace()
	if ns == "" && m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns = "default"
	}
	return a.dyn.Resource(m.Resource).Namespace(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
}

// Delete removes obj.
func (a *Applier) Delete(ctx context.Context, o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	ns := o.GetNamespace()
	if ns == "" && m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns = "default"
	}
	return a.dyn.Resource(m.Resource).Namespace(ns).Delete(ctx, o.GetName(), metav1.DeleteOptions{})
}
