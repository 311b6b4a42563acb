package istio

import (
	"fmt"
	"sort"
	"strings"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// buildVirtualServices resolves VirtualServices, sorted by namespace/name.
func (b *builder) buildVirtualServices(gateways []*model.Gateway) []*model.VirtualService {
	known := map[string]bool{}
	for _, g := range gateways {
		known[g.Key()] = true
	}
	var out []*model.VirtualService
	for _, v := range b.virtualServices {
		if vs := b.virtualService(v, known); vs != nil {
			out = append(out, vs)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (b *builder) virtualService(v typed[*networking.VirtualService], gateways map[string]bool) *model.VirtualService {
	o, spec := v.obj, v.spec
	n := len(b.errs)
	vs := &model.VirtualService{Name: o.Name, Namespace: o.Namespace, Source: o.Source()}
	if len(spec.GetHosts()) == 0 {
		b.errorf(o, "spec.hosts", "at least one host is required")
	}
	seen := map[string]bool{}
	for i, h := range spec.GetHosts() {
		host := ResolveHost(h, o.Namespace)
		field := fmt.Sprintf("spec.hosts[%d]", i)
		switch {
		case host == "":
			b.errorf(o, field, "empty host")
		case seen[host]:
			b.errorf(o, field, "duplicate host %q", host)
		case validIP(host):
			b.errorf(o, field, "host %q must be a DNS name, not an IP address", h)
		default:
			if err := checkHostName(host); err != nil {
				b.errorf(o, field, "%v", err)
			}
		}
		seen[host] = true
		vs.Hosts = append(vs.Hosts, host)
	}
	vs.Gateways = b.bindGateways(o, spec.GetGateways(), gateways)
	if len(spec.GetHttp()) == 0 && len(spec.GetTcp()) == 0 && len(spec.GetTls()) == 0 {
		b.errorf(o, "spec", "http, tcp or tls routes are required")
	}
	for i, r := range spec.GetHttp() {
		vs.HTTP = append(vs.HTTP, b.httpRoute(o, i, r))
	}
	if vs.HTTP == nil {
		vs.HTTP = []model.HTTPRoute{}
	}
	if len(b.errs) > n {
		return nil
	}
	return vs
}

// bindGateways resolves gateway names to "namespace/name" keys; "mesh" stays;
// an empty list means the mesh. Each must name a known Gateway.
func (b *builder) bindGateways(o *config.Object, names []string, known map[string]bool) []string {
	if len(names) == 0 {
		return []string{model.MeshGateway}
	}
	var out []string
	seen := map[string]bool{}
	for i, g := range names {
		key := g
		switch {
		case g == model.MeshGateway:
		case strings.Contains(g, "/"):
			ns, name, _ := strings.Cut(g, "/")
			if ns == "." {
				ns = o.Namespace
			}
			key = ns + "/" + name
		default:
			key = o.Namespace + "/" + g
		}
		if key != model.MeshGateway && !known[key] {
			if gw := b.gatewayObject(key); gw != nil {
				// Not a second problem: the Gateway's own error says why.
				b.errorf(o, fmt.Sprintf("spec.gateways[%d]", i), "Gateway %s (%s) is invalid; see its own error", key, gw.Source().File)
				continue
			}
			b.errorf(o, fmt.Sprintf("spec.gateways[%d]", i), "unknown gateway %q (no Gateway %s)", g, key)
			continue
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, key)
		}
	}
	return out
}

func (b *builder) httpRoute(o *config.Object, i int, r *networking.HTTPRoute) model.HTTPRoute {
	field := fmt.Sprintf("spec.http[%d]", i)
	out := model.HTTPRoute{Name: r.GetName(), Spec: r, Index: i}
	actions := 0
	for _, set := range []bool{len(r.GetRoute()) > 0, r.GetRedirect() != nil, r.GetDirectResponse() != nil, r.GetDelegate() != nil} {
		if set {
			actions++
		}
	}
	switch {
	case r.GetDelegate() != nil:
		b.errorf(o, field+".delegate", "delegate VirtualServices are not supported")
	case actions == 0:
		b.errorf(o, field, "one of route, redirect or directResponse is required")
	case actions > 1:
		b.errorf(o, field, "only one of route, redirect or directResponse can be set")
	}
	total := 0
	for j, d := range r.GetRoute() {
		f := fmt.Sprintf("%s.route[%d]", field, j)
		if d.GetWeight() < 0 {
			b.errorf(o, f+".weight", "weight %d must not be negative", d.GetWeight())
		}
		total += int(d.GetWeight())
		dest, ok := b.resolveDestination(o, f+".destination", d.GetDestination())
		if !ok {
			continue
		}
		dest.Weight = uint32(max(d.GetWeight(), 0))
		dest.Headers = d.GetHeaders()
		out.Route = append(out.Route, dest)
	}
	switch n := len(r.GetRoute()); {
	case n == 1:
		if len(out.Route) == 1 {
			out.Route[0].Weight = 100 // a lone destination takes all traffic, whatever its weight says
		}
	case n > 1 && total != 100:
		b.errorf(o, field+".route", "weights sum to %d, want 100", total)
	}
	out.Mirrors = b.mirrors(o, field, r)
	b.checkHTTPRoute(o, field, r)
	return out
}

func (b *builder) mirrors(o *config.Object, field string, r *networking.HTTPRoute) []model.MirrorDestination {
	var out []model.MirrorDestination
	if r.GetMirror() != nil && len(r.GetMirrors()) > 0 {
		b.errorf(o, field+".mirrors", "only one of mirror or mirrors can be set")
		return nil
	}
	if r.GetMirrorPercent() != nil && r.GetMirrorPercentage() != nil {
		b.errorf(o, field+".mirrorPercentage", "only one of mirrorPercent or mirrorPercentage can be set")
	}
	if m := r.GetMirror(); m != nil {
		pct := 100.0
		if p := r.GetMirrorPercentage(); p != nil {
			pct = p.GetValue()
			b.checkPercent(o, field+".mirrorPercentage.value", pct)
		} else if p := r.GetMirrorPercent(); p != nil {
			pct = float64(p.GetValue())
			b.checkPercent(o, field+".mirrorPercent", pct)
		}
		if d, ok := b.resolveDestination(o, field+".mirror", m); ok {
			out = append(out, model.MirrorDestination{Destination: d, Percent: pct})
		}
	} else if r.GetMirrorPercentage() != nil || r.GetMirrorPercent() != nil {
		b.errorf(o, field+".mirrorPercentage", "set without mirror")
	}
	for j, m := range r.GetMirrors() {
		f := fmt.Sprintf("%s.mirrors[%d]", field, j)
		pct := 100.0
		if p := m.GetPercentage(); p != nil {
			pct = p.GetValue()
			b.checkPercent(o, f+".percentage.value", pct)
		}
		if d, ok := b.resolveDestination(o, f+".destination", m.GetDestination()); ok {
			out = append(out, model.MirrorDestination{Destination: d, Percent: pct})
		}
	}
	return out
}

// resolveDestination resolves a destination's host (in the VirtualService's
// namespace), port and subset against the known services.
func (b *builder) resolveDestination(o *config.Object, field string, d *networking.Destination) (model.Destination, bool) {
	if d == nil {
		b.errorf(o, field, "required")
		return model.Destination{}, false
	}
	host := ResolveHost(d.GetHost(), o.Namespace)
	if host == "" {
		b.errorf(o, field+".host", "required")
		return model.Destination{}, false
	}
	svc, ok := b.services[host]
	if !ok {
		b.errorf(o, field+".host", "unknown host %q (%s): no Service or ServiceEntry defines it", d.GetHost(), host)
		return model.Destination{}, false
	}
	out := model.Destination{Host: host, Subset: d.GetSubset()}
	port := d.GetPort().GetNumber()
	switch {
	case port == 0 && len(svc.Ports) == 1:
		port = svc.Ports[0].Number
	case port == 0:
		b.errorf(o, field+".port", "required: service %s has %d ports", host, len(svc.Ports))
		return model.Destination{}, false
	default:
		found := false
		for _, p := range svc.Ports {
			found = found || p.Number == port
		}
		if !found {
			b.errorf(o, field+".port.number", "service %s has no port %d", host, port)
			return model.Destination{}, false
		}
	}
	out.Port = port
	if out.Subset != "" {
		found := false
		var names []string
		for _, s := range svc.Subsets {
			found = found || s.Name == out.Subset
			names = append(names, s.Name)
		}
		if !found {
			if svc.RuleSource == nil {
				b.errorf(o, field+".subset", "unknown subset %q: no DestinationRule for host %s", out.Subset, host)
			} else {
				b.errorf(o, field+".subset", "unknown subset %q: DestinationRule %s/%s defines [%s]",
					out.Subset, svc.RuleSource.Namespace, svc.RuleSource.Name, strings.Join(names, ", "))
			}
			return model.Destination{}, false
		}
	}
	out.Cluster = ClusterName(out.Port, out.Subset, host)
	return out, true
}

// gatewayObject is the Gateway object namespace/name of the set, built or not.
func (b *builder) gatewayObject(key string) *config.Object {
	for _, g := range b.gateways {
		if g.obj.Namespace+"/"+g.obj.Name == key {
			return g.obj
		}
	}
	return nil
}
