package translate

import (
	"strings"
	"testing"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// TestMeshHostsMatchesScan: the index returns exactly the VirtualServices a
// scan of every mesh VirtualService with hostCovers returns, in mesh order,
// each once, for exact, upper-case and wildcard hosts.
func TestMeshHostsMatchesScan(t *testing.T) {
	vs := func(name string, gateways []string, hosts ...string) *model.VirtualService {
		return &model.VirtualService{Name: name, Hosts: hosts, Gateways: gateways}
	}
	mesh := []string{model.MeshGateway}
	m := &model.Mesh{VirtualServices: []*model.VirtualService{
		vs("a", mesh, "reviews.default.svc.cluster.local"),
		vs("b", []string{"istio-system/gw"}, "reviews.default.svc.cluster.local"), // not bound to the mesh
		vs("c", mesh, "*.default.svc.cluster.local", "REVIEWS.default.svc.cluster.local"),
		vs("d", mesh, "*"),
		vs("e", []string{"istio-system/gw", model.MeshGateway}, "ratings.default.svc.cluster.local", "Ratings.default.svc.cluster.local"),
		vs("f", mesh, "*.example.com"),
	}}
	scan := func(host string) []string {
		var out []string
		for _, v := range m.VirtualServices {
			if !contains(v.Gateways, model.MeshGateway) {
				continue
			}
			for _, p := range v.Hosts {
				if hostCovers(p, host) {
					out = append(out, v.Name)
					break
				}
			}
		}
		return out
	}
	mh := newMeshHosts(m)
	for _, host := range []string{
		"reviews.default.svc.cluster.local", "Reviews.Default.svc.cluster.local", "ratings.default.svc.cluster.local",
		"a.example.com", "example.com", "other.ns.svc.cluster.local",
	} {
		var got []string
		for _, v := range mh.covering(host) {
			got = append(got, v.Name)
		}
		if want := scan(host); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: index gives %v, scan gives %v", host, got, want)
		}
	}
}
