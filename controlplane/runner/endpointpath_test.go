package runner

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// hostsPublisher records UpdateEndpoints calls beside Update.
type hostsPublisher struct {
	recordingPublisher
	hosts [][]string
}

func (p *hostsPublisher) UpdateEndpoints(m *model.Mesh, hosts []string) error {
	if p.fail != nil {
		return p.fail
	}
	p.meshes = append(p.meshes, m)
	p.hosts = append(p.hosts, hosts)
	return nil
}

const kubeMesh = `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec: {ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: ratings}
spec: {ports: [{name: http, port: 9080}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}, weight: 80}, {destination: {host: reviews, subset: v2}, weight: 20}]
`

func kubeSlice(name, svc, version, addr string) string {
	return "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " + name +
		"\n  labels: {kubernetes.io/service-name: " + svc + ", version: " + version + "}\naddressType: IPv4\n" +
		"ports: [{name: http, port: 9080}]\nendpoints: [{addresses: [\"" + addr + "\"]}]\n"
}

// reparser parses each new version of one file the way the file source
// does: unchanged documents keep their objects.
type reparser struct{ prev []*config.Object }

func (p *reparser) set(t *testing.T, doc string) *config.Set {
	t.Helper()
	objs, err := config.ParseYAMLReusing("mesh.yaml", []byte(doc), p.prev)
	if err != nil {
		t.Fatal(err)
	}
	p.prev = objs
	set, errs := config.NewSet(objs)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return set
}

// TestEndpointSliceChangesTakeTheIncrementalPath: a change of EndpointSlices
// alone neither builds the mesh nor translates anything but the affected
// services' load assignments; it publishes through UpdateEndpoints naming
// those services, and a bad slice is still rejected with its file, resource
// and field. Any other change takes the full path.
func TestEndpointSliceChangesTakeTheIncrementalPath(t *testing.T) {
	pub := &hostsPublisher{}
	reg := prometheus.NewRegistry()
	r := New(zap.NewNop(), noSource{}, pub, reg)
	var observed []*model.Mesh
	r.OnAccepted(func(m *model.Mesh) { observed = append(observed, m) })
	count := func(mode string) int {
		return int(testutil.ToFloat64(r.metrics.translations.WithLabelValues(mode)))
	}
	p := &reparser{}
	const reviews, ratings = "reviews.default.svc.cluster.local", "ratings.default.svc.cluster.local"
	slices := kubeSlice("reviews-v1", "reviews", "v1", "10.0.0.1") + kubeSlice("reviews-v2", "reviews", "v2", "10.0.0.2") +
		kubeSlice("ratings-1", "ratings", "v1", "10.0.1.1")
	step := func(name, doc string, full, incremental int) {
		t.Helper()
		r.Apply(p.set(t, doc), nil)
		if f, i := count(ModeFull)+count(ModeEndpoints), count(ModeIncremental); f != full || i != incremental {
			t.Fatalf("%s: full=%d incremental=%d, want %d and %d (errors %v)", name, f, i, full, incremental, r.ConfigErrors())
		}
	}
	step("first", kubeMesh+slices, 1, 0)

	moved := strings.Replace(slices, "10.0.0.2", "10.0.0.9", 1)
	step("address moved", kubeMesh+moved, 1, 1)
	if len(r.ConfigErrors()) > 0 || len(pub.hosts) != 1 || strings.Join(pub.hosts[0], ",") != reviews {
		t.Fatalf("published hosts %v, errors %v", pub.hosts, r.ConfigErrors())
	}
	last := pub.meshes[len(pub.meshes)-1]
	if got := last.Services[1].Endpoints[1].Address; last.Services[1].Host != reviews || got != "10.0.0.9" {
		t.Fatalf("published %s endpoint %q", last.Services[1].Host, got)
	}
	if len(observed) != 2 || observed[1] != last {
		t.Fatalf("observers saw %d meshes", len(observed))
	}

	// A broken slice: the endpoint path cannot rebuild it, the full build
	// reports it; nothing is published.
	bad := strings.Replace(moved, "10.0.1.1", "10.0.1.300", 1)
	step("bad address", kubeMesh+bad, 1, 1)
	errs := r.ConfigErrors()
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Source.File, "mesh.yaml:") || errs[0].Source.Name != "ratings-1" ||
		errs[0].Field != "endpoints[0].addresses[0]" {
		t.Fatalf("errors: %v", errs)
	}
	if len(pub.meshes) != 2 {
		t.Fatalf("a bad slice was published")
	}

	// Fixed, and compared with the last published set: incremental again.
	step("slice removed", kubeMesh+kubeSlice("reviews-v1", "reviews", "v1", "10.0.0.1")+kubeSlice("reviews-v2", "reviews", "v2", "10.0.0.9"), 1, 2)
	if len(r.ConfigErrors()) > 0 || strings.Join(pub.hosts[len(pub.hosts)-1], ",") != ratings {
		t.Fatalf("hosts %v, errors %v", pub.hosts, r.ConfigErrors())
	}
	if eps := pub.meshes[len(pub.meshes)-1].Services[0].Endpoints; len(eps) != 0 {
		t.Fatalf("ratings keeps endpoints of a removed slice: %v", eps)
	}

	// A route change is a full build and translation.
	step("route", strings.NewReplacer("weight: 80", "weight: 70", "weight: 20", "weight: 30").Replace(kubeMesh)+kubeSlice("reviews-v1", "reviews", "v1", "10.0.0.1")+kubeSlice("reviews-v2", "reviews", "v2", "10.0.0.9"), 2, 2)
	if len(r.ConfigErrors()) > 0 || len(pub.meshes) != 4 {
		t.Fatalf("route change: published %d, errors %v", len(pub.meshes), r.ConfigErrors())
	}
}
