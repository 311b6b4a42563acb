package kube

import (
	"encoding/json"
	"fmt"
	"strings"

	istionet "istio.io/client-go/pkg/apis/networking/v1"
	istiosec "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/istio"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// role says which clusters a kind is read from and what happens to its
// objects when a cluster goes away.
type role int

const (
	// roleEndpoints kinds (EndpointSlice, Pod) are read from every cluster
	// and dropped once a cluster has been unreachable for the grace period.
	roleEndpoints role = iota
	// roleServices kinds (Service, Secret, Namespace) are read from every
	// cluster and kept at their last state while a cluster is away, so that
	// routes to its hosts stay valid.
	roleServices
	// roleConfig kinds (Istio and Rosen config) are read from the config
	// clusters only (the primary, or all) and kept while a cluster is away.
	roleConfig
	// roleModule kinds (CQRSRule, TCCPolicy) are read like config but are
	// not part of the mesh: they go to the module that registered a
	// ModuleHandler for them (modules.go).
	roleModule
)

// kind is one watched resource.
type kind struct {
	Kind     string // Kubernetes kind, also config.Object.Kind
	Resource string // plural resource name, for the API and RBAC
	Group    string // API group ("" for core)
	Version  string
	role     role
	// example is an empty typed object; nil for kinds read through the
	// dynamic client (Rosen's own CRDs).
	example runtime.Object
	// fieldSelector narrows the watch (Secrets: TLS only).
	fieldSelector string
	// convert turns a cached object into config for the cluster; nil with an
	// error the cluster's operator should see (it is kept out of the set).
	convert func(c *clusterRef, obj any) (*config.Object, error)
}

// GVR is the kind's group, version and resource.
func (k kind) GVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: k.Group, Version: k.Version, Resource: k.Resource}
}

// clusterRef is what conversion needs to know about a cluster.
type clusterRef struct{ id string }

// file is the provenance that error messages print for a cluster's objects.
func (c *clusterRef) file() string { return SourcePrefix + c.id }

// SourcePrefix starts config.Object.File for every object read from a
// cluster ("kube://cluster-a"), so messages name the cluster.
const SourcePrefix = "kube://"

// watchedKinds lists what Rosen reads from a cluster, in the order it is
// assembled. RBAC in manifests/ grants exactly these (get, list, watch).
var watchedKinds = []kind{
	{Kind: "Namespace", Resource: "namespaces", Version: "v1", role: roleServices, example: &corev1.Namespace{}, convert: nil},
	{Kind: config.KindService, Resource: "services", Version: "v1", role: roleServices, example: &corev1.Service{}, convert: convertService},
	{Kind: config.KindSecret, Resource: "secrets", Version: "v1", role: roleServices, example: &corev1.Secret{},
		fieldSelector: "type=" + string(corev1.SecretTypeTLS), convert: convertSecret},
	{Kind: config.KindEndpointSlice, Resource: "endpointslices", Group: "discovery.k8s.io", Version: "v1", role: roleEndpoints, example: &discoveryv1.EndpointSlice{}, convert: convertSlice},
	{Kind: "Pod", Resource: "pods", Version: "v1", role: roleEndpoints, example: &corev1.Pod{}, convert: convertPod},
	{Kind: config.KindGateway, Resource: "gateways", Group: "networking.istio.io", Version: "v1", role: roleConfig, example: &istionet.Gateway{}, convert: convertIstio},
	{Kind: config.KindVirtualService, Resource: "virtualservices", Group: "networking.istio.io", Version: "v1", role: roleConfig, example: &istionet.VirtualService{}, convert: convertIstio},
	{Kind: config.KindDestinationRule, Resource: "destinationrules", Group: "networking.istio.io", Version: "v1", role: roleConfig, example: &istionet.DestinationRule{}, convert: convertIstio},
	{Kind: config.KindServiceEntry, Resource: "serviceentries", Group: "networking.istio.io", Version: "v1", role: roleConfig, example: &istionet.ServiceEntry{}, convert: convertIstio},
	{Kind: config.KindWorkloadEntry, Resource: "workloadentries", Group: "networking.istio.io", Version: "v1", role: roleConfig, example: &istionet.WorkloadEntry{}, convert: convertIstio},
	{Kind: config.KindAuthorizationPolicy, Resource: "authorizationpolicies", Group: "security.istio.io", Version: "v1", role: roleConfig, example: &istiosec.AuthorizationPolicy{}, convert: convertIstio},
	{Kind: config.KindRequestAuthentication, Resource: "requestauthentications", Group: "security.istio.io", Version: "v1", role: roleConfig, example: &istiosec.RequestAuthentication{}, convert: convertIstio},
	{Kind: config.KindRateLimitPolicy, Resource: "ratelimitpolicies", Group: "rosen.dev", Version: "v1alpha1", role: roleConfig, convert: convertRosen},
	{Kind: KindCQRSRule, Resource: "cqrsrules", Group: "rosen.dev", Version: "v1alpha1", role: roleModule},
	{Kind: KindTCCPolicy, Resource: "tccpolicies", Group: "rosen.dev", Version: "v1alpha1", role: roleModule},
}

// WatchedResources lists "group/resource" for every kind read (for docs and the RBAC test).
func WatchedResources() []schema.GroupVersionResource {
	out := make([]schema.GroupVersionResource, 0, len(watchedKinds))
	for _, k := range watchedKinds {
		out = append(out, k.GVR())
	}
	return out
}

// base is the part of every converted object that comes from its metadata.
// The cluster label marks where it came from (Istio's topology.istio.io/cluster).
func base(c *clusterRef, apiVersion, kind string, md *metav1.ObjectMeta) *config.Object {
	labels := make(map[string]string, len(md.Labels)+1)
	for k, v := range md.Labels {
		labels[k] = v
	}
	labels[istio.LabelCluster] = c.id
	ns := md.Namespace
	if ns == "" {
		ns = config.DefaultNamespace
	}
	return &config.Object{APIVersion: apiVersion, Kind: kind, Name: md.Name, Namespace: ns, Labels: labels, File: c.file()}
}

func convertService(c *clusterRef, obj any) (*config.Object, error) {
	s := obj.(*corev1.Service)
	o := base(c, "v1", config.KindService, &s.ObjectMeta)
	o.Spec = s
	return o, nil
}

func convertSecret(c *clusterRef, obj any) (*config.Object, error) {
	s := obj.(*corev1.Secret)
	if s.Type != corev1.SecretTypeTLS {
		return nil, nil // the field selector already filters; a fake or old server may not
	}
	o := base(c, "v1", config.KindSecret, &s.ObjectMeta)
	o.Spec = s
	return o, nil
}

// convertSlice names the slice "<name>@<cluster>": slices of one service in
// several clusters often share names, and the config set needs unique ones.
func convertSlice(c *clusterRef, obj any) (*config.Object, error) {
	s := obj.(*discoveryv1.EndpointSlice)
	o := base(c, "discovery.k8s.io/v1", config.KindEndpointSlice, &s.ObjectMeta)
	o.Name = s.Name + "@" + c.id
	o.Spec = s
	return o, nil
}

// convertPod passes only what endpoint labels need (see trimPod).
func convertPod(c *clusterRef, obj any) (*config.Object, error) {
	p := obj.(*corev1.Pod)
	o := base(c, "v1", "Pod", &p.ObjectMeta)
	o.Name = p.Name + "@" + c.id
	o.Spec = p
	return o, nil
}

func convertIstio(c *clusterRef, obj any) (*config.Object, error) {
	var spec any
	var md *metav1.ObjectMeta
	var kind, group string
	switch v := obj.(type) {
	case *istionet.Gateway:
		spec, md, kind, group = &v.Spec, &v.ObjectMeta, config.KindGateway, "networking.istio.io"
	case *istionet.VirtualService:
		spec, md, kind, group = &v.Spec, &v.ObjectMeta, config.KindVirtualService, "networking.istio.io"
	case *istionet.DestinationRule:
		spec, md, kind, group = &v.Spec, &v.ObjectMeta, config.KindDestinationRule, "networking.istio.io"
	case *istionet.ServiceEntry:
		spec, md, kind, group = &v.Spec, &v.ObjectMeta, config.KindServiceEntry, "networking.istio.io"
	case *istionet.WorkloadEntry:
		spec, md, kind, group = &v.Spec, &v.ObjectMeta, config.KindWorkloadEntry, "networking.istio.io"
	case *istiosec.AuthorizationPolicy:
		spec, md, kind, group = &v.Spec, &v.ObjectMeta, config.KindAuthorizationPolicy, "security.istio.io"
	case *istiosec.RequestAuthentication:
		spec, md, kind, group = &v.Spec, &v.ObjectMeta, config.KindRequestAuthentication, "security.istio.io"
	default:
		return nil, fmt.Errorf("%w: %T", ErrUnexpectedObject, obj)
	}
	o := base(c, group+"/v1", kind, md)
	o.Spec = spec
	return o, nil
}

// convertRosen parses one of Rosen's own kinds exactly as the file source
// does (strict fields, the same checks and messages), from the object's JSON
// with only the metadata Rosen reads.
func convertRosen(c *clusterRef, obj any) (*config.Object, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnexpectedObject, obj)
	}
	doc := map[string]any{
		"apiVersion": u.GetAPIVersion(),
		"kind":       u.GetKind(),
		"metadata":   map[string]any{"name": u.GetName(), "namespace": u.GetNamespace(), "labels": u.GetLabels()},
	}
	if spec, ok := u.Object["spec"]; ok {
		doc["spec"] = spec
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	objs, err := config.ParseYAML(c.file(), js)
	if err != nil {
		// The document's line means nothing for an object in a cluster.
		fes := model.AsFieldErrors(err)
		errs := make(model.Errors, len(fes))
		for i, fe := range fes {
			fe.Source.File = c.file()
			errs[i] = fe
		}
		return nil, errs
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("%w: %s %s/%s parsed into %d objects", ErrUnexpectedObject, u.GetKind(), u.GetNamespace(), u.GetName(), len(objs))
	}
	o := objs[0]
	o.Line = 0
	if o.Labels == nil {
		o.Labels = map[string]string{}
	}
	o.Labels[istio.LabelCluster] = c.id
	return o, nil
}

// trimPod keeps what Rosen reads of a Pod (name, namespace, labels), so a
// cluster of many Pods costs little memory.
func trimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a DeletedFinalStateUnknown tombstone
	}
	return &corev1.Pod{
		TypeMeta: p.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, Labels: p.Labels,
			ResourceVersion: p.ResourceVersion, UID: p.UID,
		},
	}, nil
}

// dropManagedFields is the transform of every other kind: managed fields
// are large and never read.
func dropManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// FromCluster reports whether an object was read from a cluster (and so may
// be left out on its own when it cannot be used, see runner.Isolation).
func FromCluster(o *config.Object) bool { return strings.HasPrefix(o.File, SourcePrefix) }
