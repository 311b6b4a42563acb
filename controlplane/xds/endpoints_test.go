package xds

import (
	"reflect"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// TestUpdateEndpointsTouchesOnlyTheNamedHosts: UpdateEndpoints pushes the
// changed assignment of the named host only, builds no assignment of any
// other host (a change elsewhere in m, which the caller vouches is not
// there, is not picked up), translates nothing else, gates what it pushes
// and falls back to Update when no mesh was published yet.
func TestUpdateEndpointsTouchesOnlyTheNamedHosts(t *testing.T) {
	e := start(t, Options{})
	const details, reviews = "details.default.svc.cluster.local", "reviews.default.svc.cluster.local"
	if err := e.srv.UpdateEndpoints(mesh(bookinfo), []string{reviews}); err != nil {
		t.Fatal(err) // no mesh yet: a full Update
	}
	c := e.sotw(t)
	node := gatewayNode("gw")
	edsNames := []string{"outbound|9080||" + details, "outbound|9080||" + reviews}
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.ListenerType, resourcev3.RouteType, resourcev3.EndpointType} {
		names := []string(nil)
		switch typ {
		case resourcev3.RouteType:
			names = []string{"http.router"}
		case resourcev3.EndpointType:
			names = edsNames
		}
		c.send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: typ, ResourceNames: names})
		r := c.next()
		c.ack(r, names...)
	}
	translations := e.gen.translations.Load()

	// Both hosts' endpoints differ in m, but only reviews is named.
	moved := mesh(map[string][]string{details: {"10.0.0.8"}, reviews: {"10.0.0.2", "10.0.0.5"}})
	if err := e.srv.UpdateEndpoints(moved, []string{reviews}); err != nil {
		t.Fatal(err)
	}
	r := c.next()
	if r.GetTypeUrl() != resourcev3.EndpointType {
		t.Fatalf("pushed %s, want only EDS", r.GetTypeUrl())
	}
	if got := resourceNames(t, r); !reflect.DeepEqual(got, []string{"outbound|9080||" + reviews}) {
		t.Fatalf("EDS push = %v", got)
	}
	c.ack(r, edsNames...)
	c.none(300 * time.Millisecond)
	if got := e.gen.translations.Load(); got != translations {
		t.Fatalf("full translations %d, want %d", got, translations)
	}
	g := e.srv.groups[`router/istio-system/"app"="gw","istio"="ingressgateway"`]
	for _, cla := range g.resources().Endpoints {
		if cla.GetClusterName() == "outbound|9080||"+reviews && len(cla.GetEndpoints()[0].GetLbEndpoints()) != 2 {
			t.Errorf("group resources keep the old reviews assignment: %v", cla)
		}
	}

	// The gate still runs on what is pushed.
	bad := mesh(map[string][]string{details: {"10.0.0.1"}, reviews: {"0.0.0.0"}})
	if err := e.srv.UpdateEndpoints(bad, []string{reviews}); err == nil {
		t.Fatal("bad endpoints accepted")
	}
	c.none(200 * time.Millisecond)

	// Nothing changed for the named host: nothing is sent.
	if err := e.srv.UpdateEndpoints(moved, []string{reviews}); err != nil {
		t.Fatal(err)
	}
	c.none(200 * time.Millisecond)
}
