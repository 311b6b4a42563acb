package istio

import (
	"fmt"
	"net/netip"
	"strings"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

func validIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// serviceEntry makes one Service per host of a ServiceEntry.
func (b *builder) serviceEntry(se typed[*networking.ServiceEntry]) []*model.Service {
	o, spec := se.obj, se.spec
	nerr := len(b.errs)
	if len(spec.GetHosts()) == 0 {
		b.errorf(o, "spec.hosts", "at least one host is required")
	}
	if len(spec.GetPorts()) == 0 {
		b.errorf(o, "spec.ports", "at least one port is required")
	}
	var ports []model.ServicePort
	targets := map[string]uint32{}
	seen := map[string]bool{}
	seenNum := map[uint32]bool{}
	for i, p := range spec.GetPorts() {
		field := fmt.Sprintf("spec.ports[%d]", i)
		if p.GetNumber() < 1 || p.GetNumber() > 65535 {
			b.errorf(o, field+".number", "port %d out of range 1-65535", p.GetNumber())
			continue
		}
		if p.GetName() == "" {
			b.errorf(o, field+".name", "required")
		} else if seen[p.GetName()] {
			b.errorf(o, field+".name", "duplicate port name %q", p.GetName())
		}
		if seenNum[p.GetNumber()] {
			b.errorf(o, field+".number", "duplicate port number %d", p.GetNumber())
		}
		seen[p.GetName()], seenNum[p.GetNumber()] = true, true
		proto := InferProtocol(p.GetName(), "")
		if p.GetProtocol() != "" {
			proto = ParseProtocol(p.GetProtocol())
			if proto == "" {
				b.errorf(o, field+".protocol", "unknown protocol %q", p.GetProtocol())
			}
		}
		if p.GetTargetPort() > 65535 {
			b.errorf(o, field+".targetPort", "port %d out of range 1-65535", p.GetTargetPort())
		} else if p.GetTargetPort() != 0 {
			targets[p.GetName()] = p.GetTargetPort()
		}
		ports = append(ports, model.ServicePort{Number: p.GetNumber(), Name: p.GetName(), Protocol: proto})
	}
	res := model.ResolutionNone
	switch spec.GetResolution() {
	case networking.ServiceEntry_STATIC:
		res = model.ResolutionStatic
	case networking.ServiceEntry_DNS, networking.ServiceEntry_DNS_ROUND_ROBIN:
		res = model.ResolutionDNS
	}
	if spec.GetWorkloadSelector() != nil && len(spec.GetEndpoints()) > 0 {
		b.errorf(o, "spec.workloadSelector", "only one of endpoints or workloadSelector can be set")
	}
	var eps []model.Endpoint
	for i, we := range spec.GetEndpoints() {
		e := b.endpoint(o, fmt.Sprintf("spec.endpoints[%d]", i), we, seen)
		if e == nil {
			continue
		}
		if res == model.ResolutionStatic && !validIP(e.Address) && !strings.HasPrefix(e.Address, "unix://") {
			b.errorf(o, fmt.Sprintf("spec.endpoints[%d].address", i), "%q is not an IP address (resolution STATIC)", e.Address)
		}
		eps = append(eps, *e)
	}
	if sel := spec.GetWorkloadSelector(); sel != nil {
		eps = append(eps, b.selectWorkloads(o.Namespace, sel.GetLabels())...)
	}
	for i := range eps {
		for name, t := range targets {
			if _, ok := eps[i].Ports[name]; !ok {
				if eps[i].Ports == nil {
					eps[i].Ports = map[string]uint32{}
				}
				eps[i].Ports[name] = t
			}
		}
	}
	var out []*model.Service
	for i, h := range spec.GetHosts() {
		host := ResolveHost(h, o.Namespace)
		field := fmt.Sprintf("spec.hosts[%d]", i)
		if host == "" {
			b.errorf(o, field, "empty host")
			continue
		}
		if validIP(host) {
			b.errorf(o, field, "host %q must be a DNS name, not an IP address", h)
			continue
		}
		if err := checkHostName(host); err != nil {
			b.errorf(o, field, "%v", err)
			continue
		}
		hostEps := eps
		if res == model.ResolutionDNS && len(spec.GetEndpoints()) == 0 && spec.GetWorkloadSelector() == nil {
			// Istio: a DNS ServiceEntry without endpoints resolves its hosts.
			if strings.Contains(host, "*") {
				b.errorf(o, field, "wildcard host %q needs endpoints with resolution DNS", h)
				continue
			}
			hostEps = []model.Endpoint{{Address: host, Weight: 1, Healthy: true, Source: o.Source()}}
		}
		out = append(out, &model.Service{
			Host:       host,
			Namespace:  o.Namespace,
			Ports:      append([]model.ServicePort(nil), ports...),
			Resolution: res,
			Endpoints:  append([]model.Endpoint(nil), hostEps...),
			Source:     o.Source(),
		})
	}
	if len(b.errs) > nerr {
		return nil
	}
	return out
}

// endpoint converts an inline ServiceEntry endpoint (a WorkloadEntry message).
func (b *builder) endpoint(o *config.Object, field string, we *networking.WorkloadEntry, portNames map[string]bool) *model.Endpoint {
	if we.GetAddress() == "" {
		b.errorf(o, field+".address", "required")
		return nil
	}
	e := &model.Endpoint{
		Address: we.GetAddress(),
		Labels:  copyLabels(we.GetLabels()),
		Weight:  we.GetWeight(),
		Healthy: true,
		Source:  o.Source(),
	}
	if e.Weight == 0 {
		e.Weight = 1
	}
	for _, name := range sortedKeys(we.GetPorts()) {
		p := we.GetPorts()[name]
		if p < 1 || p > 65535 {
			b.errorf(o, fmt.Sprintf("%s.ports[%q]", field, name), "port %d out of range 1-65535", p)
			continue
		}
		if portNames != nil && !portNames[name] {
			b.errorf(o, fmt.Sprintf("%s.ports[%q]", field, name), "no service port is named %q", name)
			continue
		}
		if e.Ports == nil {
			e.Ports = map[string]uint32{}
		}
		e.Ports[name] = p
	}
	loc, err := parseLocality(we.GetLocality())
	if err != nil {
		b.errorf(o, field+".locality", "%v", err)
	}
	e.Locality = loc
	return e
}

// indexWorkloads converts every WorkloadEntry once (reporting its errors once).
func (b *builder) indexWorkloads() {
	for _, we := range b.workloadEntries {
		if e := b.endpoint(we.obj, "spec", we.spec, nil); e != nil {
			b.workloads = append(b.workloads, workload{namespace: we.obj.Namespace, labels: we.spec.GetLabels(), endpoint: *e})
		}
	}
}

// workload is a converted WorkloadEntry.
type workload struct {
	namespace string
	labels    map[string]string
	endpoint  model.Endpoint
}

// selectWorkloads returns the endpoints of the WorkloadEntries of a
// namespace whose labels match a selector.
func (b *builder) selectWorkloads(namespace string, selector map[string]string) []model.Endpoint {
	var out []model.Endpoint
	for _, w := range b.workloads {
		if w.namespace == namespace && selects(selector, w.labels) {
			e := w.endpoint
			e.Ports = copyPorts(e.Ports)
			e.Labels = copyLabels(e.Labels)
			out = append(out, e)
		}
	}
	return out
}

// parseLocality reads Istio's "region/zone/subzone".
func parseLocality(s string) (model.Locality, error) {
	if s == "" {
		return model.Locality{}, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) > 3 {
		return model.Locality{}, fmt.Errorf("%q: want region/zone/subzone", s)
	}
	for _, p := range parts {
		if p == "" {
			return model.Locality{}, fmt.Errorf("%q: empty part (want region/zone/subzone)", s)
		}
	}
	parts = append(parts, "", "")
	return model.Locality{Region: parts[0], Zone: parts[1], SubZone: parts[2]}, nil
}
