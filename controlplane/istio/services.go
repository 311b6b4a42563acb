package istio

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// Label keys with meaning to Kubernetes.
const (
	labelServiceName = discoveryv1.LabelServiceName // kubernetes.io/service-name
	labelRegion      = corev1.LabelTopologyRegion   // topology.kubernetes.io/region
)

// buildServices makes Services from Kubernetes Services and ServiceEntries.
func (b *builder) buildServices() {
	b.indexWorkloads()
	for _, ks := range b.kubeServices {
		b.addService(b.kubeService(ks))
	}
	for _, se := range b.serviceEntries {
		for _, s := range b.serviceEntry(se) {
			b.addService(s)
		}
	}
	for _, s := range b.services {
		sortPorts(s.Ports)
		sortEndpoints(s.Endpoints)
	}
}

func (b *builder) addService(s *model.Service) {
	if s == nil {
		return
	}
	if prev, ok := b.services[s.Host]; ok {
		b.errs = append(b.errs, model.Errorf(s.Source, "", "host %s is already defined by %s %s/%s (%s)",
			s.Host, prev.Source.Kind, prev.Source.Namespace, prev.Source.Name, prev.Source.File))
		return
	}
	b.services[s.Host] = s
}

func (b *builder) kubeService(ks typed[*corev1.Service]) *model.Service {
	o, svc := ks.obj, ks.spec
	s := &model.Service{
		Host:       o.Name + "." + o.Namespace + ".svc." + DomainSuffix,
		Namespace:  o.Namespace,
		Resolution: model.ResolutionStatic,
		Source:     o.Source(),
	}
	seen := map[string]bool{}
	for i, p := range svc.Spec.Ports {
		field := fmt.Sprintf("spec.ports[%d]", i)
		if p.Port < 1 || p.Port > 65535 {
			b.errorf(o, field+".port", "port %d out of range 1-65535", p.Port)
			continue
		}
		if len(svc.Spec.Ports) > 1 && p.Name == "" {
			b.errorf(o, field+".name", "required when a service has several ports")
		}
		if seen[p.Name] {
			b.errorf(o, field+".name", "duplicate port name %q", p.Name)
		}
		seen[p.Name] = true
		proto := ""
		if p.Protocol == corev1.ProtocolUDP {
			proto = ProtoUDP
		} else {
			app := ""
			if p.AppProtocol != nil {
				app = *p.AppProtocol
			}
			proto = InferProtocol(p.Name, app)
		}
		s.Ports = append(s.Ports, model.ServicePort{Number: uint32(p.Port), Name: p.Name, Protocol: proto})
	}
	if len(s.Ports) == 0 && len(svc.Spec.Ports) == 0 {
		b.errorf(o, "spec.ports", "a service needs at least one port")
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		s.Resolution = model.ResolutionDNS
		if svc.Spec.ExternalName == "" {
			b.errorf(o, "spec.externalName", "required for type ExternalName")
		} else {
			s.Endpoints = append(s.Endpoints, model.Endpoint{
				Address: strings.ToLower(svc.Spec.ExternalName), Weight: 1, Healthy: true, Source: o.Source(),
			})
		}
		return s
	}
	for _, es := range b.slicesOf(o.Namespace, o.Name) {
		s.Endpoints = append(s.Endpoints, b.sliceEndpoints(es)...)
	}
	// Istio: a Service's selector also selects WorkloadEntries of its namespace.
	if len(svc.Spec.Selector) > 0 {
		s.Endpoints = append(s.Endpoints, b.selectWorkloads(o.Namespace, svc.Spec.Selector)...)
	}
	return s
}

// sliceLabels are the EndpointSlice's own labels without Kubernetes' ones:
// Rosen's convention for giving its endpoints subset labels.
func sliceLabels(l map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		if i := strings.IndexByte(k, '/'); i >= 0 {
			domain := k[:i]
			if domain == "kubernetes.io" || strings.HasSuffix(domain, ".kubernetes.io") {
				continue
			}
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (b *builder) sliceEndpoints(es typed[*discoveryv1.EndpointSlice]) []model.Endpoint {
	o, slice := es.obj, es.spec
	if slice.AddressType == discoveryv1.AddressTypeFQDN {
		b.errorf(o, "addressType", "FQDN endpoint slices are not supported (use a ServiceEntry with resolution DNS)")
		return nil
	}
	if slice.AddressType != discoveryv1.AddressTypeIPv4 && slice.AddressType != discoveryv1.AddressTypeIPv6 {
		b.errorf(o, "addressType", "%q: want IPv4 or IPv6 (required, as in Kubernetes)", slice.AddressType)
		return nil
	}
	ports := map[string]uint32{}
	for i, p := range slice.Ports {
		if p.Port == nil {
			continue
		}
		if *p.Port < 1 || *p.Port > 65535 {
			b.errorf(o, fmt.Sprintf("ports[%d].port", i), "port %d out of range 1-65535", *p.Port)
			continue
		}
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		ports[name] = uint32(*p.Port)
	}
	labels := sliceLabels(o.Labels)
	var out []model.Endpoint
	for i, ep := range slice.Endpoints {
		if len(ep.Addresses) == 0 {
			b.errorf(o, fmt.Sprintf("endpoints[%d].addresses", i), "required")
			continue
		}
		addr := ep.Addresses[0] // Kubernetes: the addresses of one endpoint are fungible
		if !validIP(addr) {
			b.errorf(o, fmt.Sprintf("endpoints[%d].addresses[0]", i), "%q is not an IP address", addr)
			continue
		}
		if ip, _ := netip.ParseAddr(addr); (slice.AddressType == discoveryv1.AddressTypeIPv4) != ip.Is4() {
			// As the Kubernetes API server: a slice holds one family.
			b.errorf(o, fmt.Sprintf("endpoints[%d].addresses[0]", i), "%q is not an %s address (the slice's addressType)", addr, slice.AddressType)
			continue
		}
		e := model.Endpoint{
			Address:   addr,
			Ports:     copyPorts(ports),
			Labels:    b.endpointLabels(o, ep, labels),
			Weight:    1,
			ClusterID: o.Labels[LabelCluster],
			Source:    o.Source(),
		}
		e.Healthy, e.Draining = endpointHealth(ep.Conditions)
		e.Locality.Region = o.Labels[labelRegion]
		if r := ep.DeprecatedTopology[labelRegion]; r != "" {
			e.Locality.Region = r
		}
		if ep.Zone != nil {
			e.Locality.Zone = *ep.Zone
		}
		out = append(out, e)
	}
	return out
}

func copyPorts(m map[string]uint32) map[string]uint32 {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]uint32, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyLabels(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortPorts(ps []model.ServicePort) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Number < ps[j].Number })
}

// sortEndpoints orders endpoints by address, then ports, then source.
func sortEndpoints(es []model.Endpoint) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.Address != b.Address {
			return a.Address < b.Address
		}
		if pa, pb := portsKey(a.Ports), portsKey(b.Ports); pa != pb {
			return pa < pb
		}
		return a.Source.File < b.Source.File
	})
}

func portsKey(m map[string]uint32) string {
	var sb strings.Builder
	for _, k := range sortedKeys(m) {
		fmt.Fprintf(&sb, "%s=%010d,", k, m[k])
	}
	return sb.String()
}
