package istio

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// EndpointKind reports whether a change of an object of this kind can only
// move endpoints: EndpointSlices (addresses, conditions, zones) and Pods
// (the labels of the endpoints that point at them). A set whose changes are
// all of these kinds may be applied with RebuildEndpoints.
func EndpointKind(kind string) bool {
	return kind == config.KindEndpointSlice || kind == "Pod"
}

// RebuildEndpoints is Build for a set that differs from the one prev was
// built from only in EndpointSlices and Pods (changed: their old and new
// versions, either may be missing). It recomputes the endpoints of the
// Kubernetes Services those objects belong to, exactly as Build does, and
// returns prev with only those services' Endpoints replaced (prev is not
// modified; everything else is shared), plus the hosts whose endpoints were
// recomputed, sorted. The result equals Build(set) whenever Build(set)
// succeeds; any problem in the recomputed endpoints is returned as Build
// would report it, and the caller should then fall back to Build.
func RebuildEndpoints(prev *model.Mesh, set *config.Set, changed []*config.Object) (*model.Mesh, []string, error) {
	if prev == nil || set == nil {
		return nil, nil, fmt.Errorf("istio: endpoint rebuild needs the previous mesh and the new set")
	}
	b := &builder{services: map[string]*model.Service{}}
	b.index(set.Objects)
	if len(b.errs) > 0 {
		return nil, nil, b.errs
	}

	// The services whose endpoints may have moved.
	affected := map[sliceKey]bool{}
	var pods map[podKey]bool
	for _, o := range changed {
		switch o.Spec.(type) {
		case *discoveryv1.EndpointSlice:
			affected[sliceKey{o.Namespace, o.Labels[labelServiceName]}] = true
		case *corev1.Pod:
			p := o.Spec.(*corev1.Pod)
			ns, name := p.Namespace, p.Name
			if ns == "" {
				ns = o.Namespace
			}
			if name == "" {
				name = o.Name
			}
			if pods == nil {
				pods = map[podKey]bool{}
			}
			pods[podKey{o.Labels[LabelCluster], ns, name}] = true
		default:
			return nil, nil, fmt.Errorf("istio: %s %s/%s is not an endpoint object", o.Kind, o.Namespace, o.Name)
		}
	}
	if len(pods) > 0 {
		for _, es := range b.endpointSlices {
			if slicePointsAt(es, pods) {
				affected[sliceKey{es.obj.Namespace, es.obj.Labels[labelServiceName]}] = true
			}
		}
	}

	kube := make(map[sliceKey]typed[*corev1.Service], len(affected))
	for _, ks := range b.kubeServices {
		k := sliceKey{ks.obj.Namespace, ks.obj.Name}
		if affected[k] {
			kube[k] = ks
		}
	}
	b.indexWorkloads()
	fresh := map[string]*model.Service{}
	for k := range affected {
		ks, ok := kube[k]
		if !ok || ks.spec.Spec.Type == corev1.ServiceTypeExternalName {
			continue // slices of no Service, or of one whose endpoints are a DNS name
		}
		s := b.kubeService(ks)
		sortEndpoints(s.Endpoints)
		fresh[s.Host] = s
	}
	if len(b.errs) > 0 {
		return nil, nil, b.errs
	}

	next := *prev
	next.Services = make([]*model.Service, len(prev.Services))
	var hosts []string
	for i, s := range prev.Services {
		next.Services[i] = s
		f, ok := fresh[s.Host]
		if !ok || s.Source.Kind != "Service" || s.Resolution != model.ResolutionStatic {
			continue // a host of a ServiceEntry, or a service Build left out
		}
		c := *s
		c.Endpoints = f.Endpoints
		next.Services[i] = &c
		hosts = append(hosts, s.Host)
	}
	return &next, hosts, nil
}

// slicePointsAt reports whether one of the slice's endpoints is one of pods.
func slicePointsAt(es typed[*discoveryv1.EndpointSlice], pods map[podKey]bool) bool {
	cluster := es.obj.Labels[LabelCluster]
	for _, ep := range es.spec.Endpoints {
		ref := ep.TargetRef
		if ref == nil || ref.Kind != "Pod" {
			continue
		}
		ns := ref.Namespace
		if ns == "" {
			ns = es.obj.Namespace
		}
		if pods[podKey{cluster, ns, ref.Name}] {
			return true
		}
	}
	return false
}
