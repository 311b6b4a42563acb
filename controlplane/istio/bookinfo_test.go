package istio

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// samples is Istio's bookinfo sample folder, beside the repository.
const samples = "../../../shared/samples/istio-bookinfo"

// loadBookinfo loads the testdata services with the given sample files.
func loadBookinfo(t *testing.T, files ...string) *model.Mesh {
	t.Helper()
	if _, err := os.Stat(samples); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Istio samples missing under CI: %v", err)
		}
		t.Skipf("istio samples not found: %v", err)
	}
	paths := []string{"testdata/bookinfo-services.yaml"}
	for _, f := range files {
		paths = append(paths, filepath.Join(samples, f))
	}
	set, err := config.LoadDirs(paths...)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	m, err := Build(set)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return m
}

func findVS(m *model.Mesh, ns, name string) *model.VirtualService {
	for _, vs := range m.VirtualServices {
		if vs.Namespace == ns && vs.Name == name {
			return vs
		}
	}
	return nil
}

func findService(m *model.Mesh, host string) *model.Service {
	for _, s := range m.Services {
		if s.Host == host {
			return s
		}
	}
	return nil
}

func TestBookinfoJasonV2V3(t *testing.T) {
	m := loadBookinfo(t, "destination-rule-all.yaml", "virtual-service-reviews-jason-v2-v3.yaml")
	vs := findVS(m, "default", "reviews")
	if vs == nil {
		t.Fatal("no VirtualService default/reviews")
	}
	if got, want := vs.Hosts, []string{"reviews.default.svc.cluster.local"}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("hosts = %v, want %v", got, want)
	}
	if len(vs.Gateways) != 1 || vs.Gateways[0] != model.MeshGateway {
		t.Errorf("gateways = %v, want [mesh]", vs.Gateways)
	}
	if len(vs.HTTP) != 2 {
		t.Fatalf("http routes = %d, want 2", len(vs.HTTP))
	}
	for i, want := range []string{
		"outbound|9080|v2|reviews.default.svc.cluster.local",
		"outbound|9080|v3|reviews.default.svc.cluster.local",
	} {
		r := vs.HTTP[i].Route
		if len(r) != 1 || r[0].Cluster != want || r[0].Weight != 100 {
			t.Errorf("http[%d].route = %+v, want one destination %s weight 100", i, r, want)
		}
	}
	if got := vs.HTTP[0].Spec.GetMatch()[0].GetHeaders()["end-user"].GetExact(); got != "jason" {
		t.Errorf("match end-user = %q, want jason", got)
	}
	reviews := findService(m, "reviews.default.svc.cluster.local")
	if reviews == nil {
		t.Fatal("no reviews service")
	}
	if len(reviews.Subsets) != 3 || reviews.Subsets[1].Name != "v2" || reviews.Subsets[1].Labels["version"] != "v2" {
		t.Errorf("reviews subsets = %+v", reviews.Subsets)
	}
	if len(reviews.Endpoints) != 3 {
		t.Fatalf("reviews endpoints = %d, want 3", len(reviews.Endpoints))
	}
	e := reviews.Endpoints[1]
	if e.Labels["version"] != "v2" || e.Labels["app"] != "reviews" || e.Labels["kubernetes.io/service-name"] != "" {
		t.Errorf("endpoint labels = %v, want slice labels without kubernetes.io ones", e.Labels)
	}
	if !e.Healthy || e.Weight != 1 || e.Locality.Zone != "zone-a" || e.Ports["http"] != 9080 {
		t.Errorf("endpoint = %+v", e)
	}
	if p := reviews.Ports; len(p) != 1 || p[0].Protocol != ProtoHTTP || p[0].Number != 9080 {
		t.Errorf("reviews ports = %+v", p)
	}
}

func TestBookinfoWeights(t *testing.T) {
	m := loadBookinfo(t, "destination-rule-all.yaml", "virtual-service-reviews-80-20.yaml")
	r := findVS(m, "default", "reviews").HTTP[0].Route
	if len(r) != 2 || r[0].Weight != 80 || r[0].Subset != "v1" || r[1].Weight != 20 || r[1].Subset != "v2" {
		t.Errorf("route = %+v, want v1 80 / v2 20", r)
	}
}

func TestBookinfoAllV1AndGateway(t *testing.T) {
	m := loadBookinfo(t, "destination-rule-all.yaml", "virtual-service-all-v1.yaml", "bookinfo-gateway.yaml")
	if len(m.VirtualServices) != 5 {
		t.Fatalf("virtual services = %d, want 5", len(m.VirtualServices))
	}
	bi := findVS(m, "default", "bookinfo")
	if bi == nil || len(bi.Gateways) != 1 || bi.Gateways[0] != "default/bookinfo-gateway" {
		t.Fatalf("bookinfo VS = %+v", bi)
	}
	if len(m.Gateways) != 1 || m.Gateways[0].Selector["istio"] != "ingressgateway" {
		t.Fatalf("gateways = %+v", m.Gateways)
	}
	srv := m.Gateways[0].Servers[0]
	if srv.Port != 8080 || srv.Protocol != ProtoHTTP || len(srv.Hosts) != 1 || srv.Hosts[0] != "*/*" {
		t.Errorf("server = %+v", srv)
	}
}

func TestBookinfoAbortAndDelay(t *testing.T) {
	for _, f := range []string{"virtual-service-ratings-test-abort.yaml", "virtual-service-ratings-test-delay.yaml"} {
		m := loadBookinfo(t, "destination-rule-all.yaml", f)
		vs := findVS(m, "default", "ratings")
		if vs == nil || vs.HTTP[0].Spec.GetFault() == nil {
			t.Errorf("%s: no fault on ratings http[0]: %+v", f, vs)
		}
	}
}
