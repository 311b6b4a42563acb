package istio

import (
	"sort"

	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// Build resolves a configuration set into a Mesh. Every problem is reported
// (model.Errors of *model.FieldError); with any, the Mesh is nil.
func Build(set *config.Set) (*model.Mesh, error) {
	b := &builder{
		services: map[string]*model.Service{},
	}
	var objs []*config.Object
	if set != nil {
		objs = set.Objects
	}
	b.index(objs)
	b.buildServices()
	b.applyDestinationRules()
	secrets := b.buildSecrets()
	gateways := b.buildGateways(secrets)
	vss := b.buildVirtualServices(gateways)
	sec := b.buildSecurity(vss)
	if len(b.errs) > 0 {
		return nil, b.errs
	}
	m := &model.Mesh{
		Services:        make([]*model.Service, 0, len(b.services)),
		Gateways:        gateways,
		VirtualServices: vss,
		Security:        sec,
	}
	for _, s := range b.services {
		m.Services = append(m.Services, s)
	}
	sort.Slice(m.Services, func(i, j int) bool { return m.Services[i].Host < m.Services[j].Host })
	for _, name := range sortedKeys(secrets) {
		m.Secrets = append(m.Secrets, secrets[name])
	}
	if m.Gateways == nil {
		m.Gateways = []*model.Gateway{}
	}
	if m.VirtualServices == nil {
		m.VirtualServices = []*model.VirtualService{}
	}
	return m, nil
}

// typed pairs an object with its spec, for each kind.
type typed[T any] struct {
	obj  *config.Object
	spec T
}

// builder holds one Build call's inputs, indexes and errors.
type builder struct {
	kubeServices     []typed[*corev1.Service]
	endpointSlices   []typed[*discoveryv1.EndpointSlice]
	sliceIndex       map[sliceKey][]typed[*discoveryv1.EndpointSlice] // buildindex.go
	regexErrs        map[string]error                                 // buildindex.go: compileRegex
	secrets          []typed[*corev1.Secret]
	serviceEntries   []typed[*networking.ServiceEntry]
	workloadEntries  []typed[*networking.WorkloadEntry]
	destinationRules []typed[*networking.DestinationRule]
	gateways         []typed[*networking.Gateway]
	virtualServices  []typed[*networking.VirtualService]
	policies         []*config.Object       // security.go
	pods             map[podKey]*corev1.Pod // pods.go: endpoint labels

	// services by FQDN host.
	services  map[string]*model.Service
	workloads []workload
	errs      model.Errors
}

func (b *builder) errorf(o *config.Object, field, format string, args ...any) {
	b.errs = append(b.errs, model.Errorf(o.Source(), field, format, args...))
}

func (b *builder) index(objs []*config.Object) {
	for _, o := range objs {
		switch s := o.Spec.(type) {
		case *corev1.Service:
			b.kubeServices = append(b.kubeServices, typed[*corev1.Service]{o, s})
		case *discoveryv1.EndpointSlice:
			b.endpointSlices = append(b.endpointSlices, typed[*discoveryv1.EndpointSlice]{o, s})
		case *corev1.Secret:
			b.secrets = append(b.secrets, typed[*corev1.Secret]{o, s})
		case *corev1.Pod:
			b.addPod(o, s)
		case *networking.ServiceEntry:
			b.serviceEntries = append(b.serviceEntries, typed[*networking.ServiceEntry]{o, s})
		case *networking.WorkloadEntry:
			b.workloadEntries = append(b.workloadEntries, typed[*networking.WorkloadEntry]{o, s})
		case *networking.DestinationRule:
			b.destinationRules = append(b.destinationRules, typed[*networking.DestinationRule]{o, s})
		case *networking.Gateway:
			b.gateways = append(b.gateways, typed[*networking.Gateway]{o, s})
		case *networking.VirtualService:
			b.virtualServices = append(b.virtualServices, typed[*networking.VirtualService]{o, s})
		case *security.AuthorizationPolicy, *security.RequestAuthentication, *config.RateLimitPolicySpec:
			b.policies = append(b.policies, o)
		default:
			b.errorf(o, "", "unsupported object (spec %T)", o.Spec)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// selects reports whether every selector label is in labels.
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
