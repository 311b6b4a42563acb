package validate_test

import (
	"strings"
	"testing"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

func TestMeshEndpoints(t *testing.T) {
	if err := validate.MeshEndpoints(mesh()); err != nil {
		t.Fatalf("good mesh: %v", err)
	}
	// An endpoint port beyond 65535 (a workload port map) is caught in the
	// load assignment of the subset that selects it, and named after the
	// service's source.
	m := mesh()
	m.Services[0].Endpoints[0].Ports = map[string]uint32{"http": 70000}
	var got []string
	for _, fe := range model.AsFieldErrors(validate.MeshEndpoints(m)) {
		got = append(got, fe.Error())
	}
	want := []string{
		`svc.yaml: Service default/reviews: endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: ClusterLoadAssignment "outbound|9080|v1|reviews.default.svc.cluster.local": value must be less than or equal to 65535`,
		`svc.yaml: Service default/reviews: endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: ClusterLoadAssignment "outbound|9080||reviews.default.svc.cluster.local": value must be less than or equal to 65535`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if validate.MeshEndpoints(nil) == nil {
		t.Error("nil mesh passed")
	}

	// ServiceEndpoints checks the named hosts' assignments only: the same
	// errors for reviews, none for a host that is not broken.
	got = nil
	for _, fe := range model.AsFieldErrors(validate.ServiceEndpoints(m, []string{"reviews.default.svc.cluster.local"})) {
		got = append(got, fe.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ServiceEndpoints errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := validate.ServiceEndpoints(m, []string{"other.default.svc.cluster.local"}); err != nil {
		t.Errorf("another host's assignments: %v", err)
	}
	if err := validate.ServiceEndpoints(m, nil); err != nil {
		t.Errorf("no hosts: %v", err)
	}
}

// TestMeshErrorsOnceInProxyOrder: validate.Mesh checks proxies in
// parallel; a problem every proxy kind sees is still reported once, and the
// report is the same on every run.
func TestMeshErrorsOnceInProxyOrder(t *testing.T) {
	m := mesh()
	m.VirtualServices[0].HTTP[0].Route[0].Cluster = "outbound|9080|v9|" + host // a cluster no proxy has
	var first string
	for i := 0; i < 20; i++ {
		var got []string
		for _, fe := range model.AsFieldErrors(validate.Mesh(m)) {
			got = append(got, fe.Error())
		}
		report := strings.Join(got, "\n")
		if i == 0 {
			first = report
			if n := strings.Count(report, `cluster "outbound|9080|v9|`); len(got) == 0 || n != len(got) {
				t.Fatalf("errors:\n%s", report)
			}
			continue
		}
		if report != first {
			t.Fatalf("run %d reported\n%s\nrun 0 reported\n%s", i, report, first)
		}
	}
}
