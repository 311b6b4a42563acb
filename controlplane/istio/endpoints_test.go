package istio

import (
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

var endpointsBase = `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings}
spec:
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: legacy}
spec:
  type: ExternalName
  externalName: legacy.example.com
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec:
  hosts: [ext.example.internal]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 192.0.2.1}]
---
` + reviewsDR + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - {destination: {host: reviews, subset: v2}, weight: 20}
`

func slice(name, service, version, addr string) string {
	return `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ` + name + `
  labels: {kubernetes.io/service-name: ` + service + `, version: ` + version + `}
addressType: IPv4
ports: [{name: http, port: 9080}]
endpoints:
- addresses: ["` + addr + `"]
  zone: eu-1a
`
}

func parseSet(t *testing.T, yaml string) *config.Set {
	t.Helper()
	objs, err := config.ParseYAML("mesh.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	set, errs := config.NewSet(objs)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return set
}

// changedObjects is what the runner hands RebuildEndpoints: the old and new
// versions of every object that is not the same in both sets.
func changedObjects(a, b *config.Set) []*config.Object {
	key := func(o *config.Object) string { return o.Kind + "/" + o.Namespace + "/" + o.Name }
	old := map[string]*config.Object{}
	for _, o := range a.Objects {
		old[key(o)] = o
	}
	var out []*config.Object
	for _, o := range b.Objects {
		p, ok := old[key(o)]
		if !ok || !sameSpec(p.Spec, o.Spec) || !reflect.DeepEqual(p.Labels, o.Labels) {
			out = append(out, o)
			if ok {
				out = append(out, p)
			}
		}
		delete(old, key(o))
	}
	for _, o := range old {
		out = append(out, o)
	}
	return out
}

func sameSpec(a, b any) bool {
	if pa, ok := a.(proto.Message); ok {
		pb, ok := b.(proto.Message)
		return ok && proto.Equal(pa, pb)
	}
	return reflect.DeepEqual(a, b)
}

// rebuildEqualsBuild rebuilds prev's endpoints for next and checks the
// result against a full Build of next; it returns the rebuilt hosts.
func rebuildEqualsBuild(t *testing.T, prev *model.Mesh, next *config.Set, changed []*config.Object) (*model.Mesh, []string) {
	t.Helper()
	got, hosts, err := RebuildEndpoints(prev, next, changed)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Build(next)
	if err != nil {
		t.Fatal(err)
	}
	sameMesh(t, got, want)
	return got, hosts
}

// sameMesh: equal structure and, service by service, equal endpoints.
func sameMesh(t *testing.T, got, want *model.Mesh) {
	t.Helper()
	hg, err1 := model.StructureHash(got)
	hw, err2 := model.StructureHash(want)
	if err1 != nil || err2 != nil || hg != hw {
		t.Fatalf("structure differs from Build's (%v %v)", err1, err2)
	}
	for i, s := range want.Services {
		if !reflect.DeepEqual(got.Services[i].Endpoints, s.Endpoints) {
			t.Errorf("%s: endpoints\n got %+v\nwant %+v", s.Host, got.Services[i].Endpoints, s.Endpoints)
		}
	}
}

// TestRebuildEndpointsEqualsBuild: for every kind of endpoint-only change
// (an address edited, a slice added or removed, a slice of no service, a Pod
// relabelled), the rebuilt mesh equals a full Build of the new set, the
// previous mesh is untouched and only the affected hosts are named.
func TestRebuildEndpointsEqualsBuild(t *testing.T) {
	base := endpointsBase + slice("reviews-v1", "reviews", "v1", "10.0.0.1") +
		slice("reviews-v2", "reviews", "v2", "10.0.0.2") + slice("ratings-1", "ratings", "v1", "10.0.1.1")
	const reviews, ratings = "reviews.default.svc.cluster.local", "ratings.default.svc.cluster.local"
	cases := []struct {
		name  string
		next  string
		hosts []string
	}{
		{"address edited", strings.Replace(base, "10.0.0.2", "10.0.0.9", 1), []string{reviews}},
		{"slice added", base + slice("ratings-2", "ratings", "v2", "10.0.1.2"), []string{ratings}},
		{"slice removed", strings.Replace(base, slice("ratings-1", "ratings", "v1", "10.0.1.1"), "", 1), []string{ratings}},
		{"slices of two services", strings.NewReplacer("10.0.0.1", "10.0.0.7", "10.0.1.1", "10.0.1.7").Replace(base), []string{ratings, reviews}},
		{"slice of no service", base + slice("ghost-1", "ghost", "v1", "10.9.9.9"), nil},
		{"slice relabelled to another subset", strings.Replace(base, "service-name: reviews, version: v1", "service-name: reviews, version: v2", 1), []string{reviews}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prevSet, nextSet := parseSet(t, base), parseSet(t, c.next)
			prev, err := Build(prevSet)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := model.StructureHash(prev)
			prevEndpoints := prev.Services[2].Endpoints
			_, hosts := rebuildEqualsBuild(t, prev, nextSet, changedObjects(prevSet, nextSet))
			if !reflect.DeepEqual(hosts, c.hosts) {
				t.Errorf("hosts %v, want %v", hosts, c.hosts)
			}
			if after, _ := model.StructureHash(prev); after != before || !reflect.DeepEqual(prev.Services[2].Endpoints, prevEndpoints) {
				t.Error("the previous mesh was modified")
			}
		})
	}
}

// TestRebuildEndpointsReportsBadSlices: an invalid address in a changed slice
// is reported as Build reports it (file, resource, field).
func TestRebuildEndpointsReportsBadSlices(t *testing.T) {
	base := endpointsBase + slice("reviews-v1", "reviews", "v1", "10.0.0.1")
	prevSet := parseSet(t, base)
	nextSet := parseSet(t, strings.Replace(base, "10.0.0.1", "10.0.0.300", 1))
	prev, err := Build(prevSet)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = RebuildEndpoints(prev, nextSet, changedObjects(prevSet, nextSet))
	_, want := Build(nextSet)
	if err == nil || want == nil || err.Error() != want.Error() {
		t.Fatalf("rebuild error %v, Build's %v", err, want)
	}
	if !strings.Contains(err.Error(), "EndpointSlice default/reviews-v1") || !strings.Contains(err.Error(), "endpoints[0].addresses[0]") {
		t.Errorf("error does not name the resource and field: %v", err)
	}
	// An address of the other family, or no addressType: refused, as the
	// Kubernetes API server refuses them.
	for _, c := range []struct{ from, to, field string }{
		{`addresses: ["10.0.0.1"]`, `addresses: ["::1"]`, "endpoints[0].addresses[0]"},
		{"addressType: IPv4\n", "", "addressType"},
	} {
		_, err := Build(parseSet(t, strings.Replace(base, c.from, c.to, 1)))
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s → %s: %v", c.from, c.to, err)
		}
	}

	// Objects that are not endpoints are refused: the caller must Build.
	if _, _, err := RebuildEndpoints(prev, nextSet, nextSet.Objects[:1]); err == nil {
		t.Error("a non-endpoint object was accepted")
	}
}

// TestRebuildEndpointsPodLabels: a Pod whose labels change moves its
// endpoints between subsets (the Kubernetes source), as Build does.
func TestRebuildEndpointsPodLabels(t *testing.T) {
	prevSet := kubeSet(t)
	prev, err := Build(prevSet)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*config.Object
	var changed []*config.Object
	for _, o := range prevSet.Objects {
		if o.Kind == "Pod" && o.Labels[LabelCluster] == "b" {
			c := *o
			p := o.Spec.(*corev1.Pod).DeepCopy()
			p.Labels["version"] = "v3"
			c.Spec = p
			changed = append(changed, o, &c)
			o = &c
		}
		objs = append(objs, o)
	}
	nextSet, errs := config.NewSet(objs)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got, hosts := rebuildEqualsBuild(t, prev, nextSet, changed)
	if len(hosts) != 1 || hosts[0] != "reviews.default.svc.cluster.local" {
		t.Errorf("hosts %v", hosts)
	}
	for _, ep := range got.Services[0].Endpoints {
		if ep.Address == "10.0.0.2" && ep.Labels["version"] != "v3" {
			t.Errorf("relabelled pod's endpoint: %v", ep.Labels)
		}
	}
}
