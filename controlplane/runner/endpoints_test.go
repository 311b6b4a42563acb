package runner

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

// meshWithEndpoints is a ServiceEntry with two STATIC endpoints of the given
// weights and addresses, two DestinationRule subsets, and a VirtualService
// whose routes (prefix and regex matches, weighted subsets) both the
// gateway-less mesh and proxyless clients get.
func meshWithEndpoints(addrA, addrB string, weight uint64, routePrefix string) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.example.internal]
  ports: [{number: 9080, name: grpc, protocol: GRPC}]
  resolution: STATIC
  endpoints:
  - {address: %s, labels: {version: v1}, weight: %d, locality: eu/a/1}
  - {address: %s, labels: {version: v2}, weight: %d, locality: eu/a/1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews.example.internal
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews.example.internal]
  http:
  - match: [{uri: {prefix: %s}}]
    route:
    - {destination: {host: reviews.example.internal, subset: v2}}
  - match: [{uri: {regex: "/items/[0-9]+"}}]
    route:
    - {destination: {host: reviews.example.internal, subset: v1}, weight: 90}
    - {destination: {host: reviews.example.internal, subset: v2}, weight: 10}
`, addrA, weight, addrB, weight, routePrefix)
}

// TestEndpointOnlyChangeDoesNotRetranslateRoutes: a change of endpoint
// addresses goes through the endpoint gate (load assignments only), counted
// as such; a route change, and the first configuration, go through the full
// gate. A bad endpoint-only change is still rejected by the endpoint gate.
func TestEndpointOnlyChangeDoesNotRetranslateRoutes(t *testing.T) {
	pub := &recordingPublisher{}
	reg := prometheus.NewRegistry()
	r := New(zap.NewNop(), noSource{}, pub, reg)
	count := func(mode string) int {
		return int(testutil.ToFloat64(r.metrics.translations.WithLabelValues(mode)))
	}
	step := func(name, doc string, wantFull, wantEndpoints, wantPublished int) {
		t.Helper()
		r.Apply(parse(t, "mesh.yaml", doc), nil) // one file name: provenance is part of the structure
		if full, eps := count(ModeFull), count(ModeEndpoints); full != wantFull || eps != wantEndpoints {
			t.Fatalf("%s: translations full=%d endpoints=%d, want %d and %d", name, full, eps, wantFull, wantEndpoints)
		}
		if len(pub.meshes) != wantPublished {
			t.Fatalf("%s: published %d meshes, want %d (errors: %v)", name, len(pub.meshes), wantPublished, r.ConfigErrors())
		}
	}

	step("first", meshWithEndpoints("10.0.0.1", "10.0.0.2", 1, "/a"), 1, 0, 1)
	step("moved", meshWithEndpoints("10.0.0.1", "10.0.0.3", 1, "/a"), 1, 1, 2)
	if got := pub.meshes[1].Services[0].Endpoints[1].Address; got != "10.0.0.3" {
		t.Fatalf("published endpoint %q, want the moved one", got)
	}
	if len(r.ConfigErrors()) != 0 {
		t.Fatalf("errors: %v", r.ConfigErrors())
	}

	// Two endpoints of weight 2^31 in one locality sum to 2^32: the
	// locality's weight would wrap to 0, which Envoy and grpc-go reject.
	// Only endpoints differ, so the endpoint gate must catch it.
	step("overflow", meshWithEndpoints("10.0.0.1", "10.0.0.3", 1<<31, "/a"), 1, 2, 2)
	errs := r.ConfigErrors()
	if len(errs) == 0 || !strings.HasPrefix(errs[0].Source.File, "mesh.yaml") ||
		!strings.Contains(errs[0].Field, "load_balancing_weight") {
		t.Fatalf("overflowing weights: errors %v", errs)
	}

	// Back to the good endpoints: still endpoint-only against the last
	// published mesh, and the error clears.
	step("restored", meshWithEndpoints("10.0.0.4", "10.0.0.3", 1, "/a"), 1, 3, 3)
	if len(r.ConfigErrors()) != 0 {
		t.Fatalf("errors after restore: %v", r.ConfigErrors())
	}

	// A route change is a full translation again.
	step("route", meshWithEndpoints("10.0.0.4", "10.0.0.3", 1, "/b"), 2, 3, 4)
}

// TestRejectedFullChangeIsNotABaseline: after a rejected route change, an
// endpoint-only change relative to that rejected set is still compared with
// the last published mesh, so it is gated in full.
func TestRejectedFullChangeIsNotABaseline(t *testing.T) {
	pub := &recordingPublisher{}
	r := New(zap.NewNop(), noSource{}, pub, nil)
	r.Apply(parse(t, "good.yaml", meshWithEndpoints("10.0.0.1", "10.0.0.2", 1, "/a")), nil)
	bad := meshWithEndpoints("10.0.0.1", "10.0.0.2", 1, "/a") + "  - route: [{destination: {host: nowhere.example.internal}}]\n"
	r.Apply(parse(t, "bad.yaml", bad), nil)
	if len(r.ConfigErrors()) == 0 {
		t.Fatal("dangling route accepted")
	}
	r.Apply(parse(t, "bad2.yaml", strings.Replace(bad, "10.0.0.2", "10.0.0.9", 1)), nil)
	if len(r.ConfigErrors()) == 0 || len(pub.meshes) != 1 {
		t.Fatalf("dangling route with moved endpoints: errors %v, published %d", r.ConfigErrors(), len(pub.meshes))
	}
	if full := testutil.ToFloat64(r.metrics.translations.WithLabelValues(ModeFull)); full != 1 {
		t.Fatalf("full translations %v: the builds that failed must not reach the gate", full)
	}
}
