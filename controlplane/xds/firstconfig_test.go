package xds

import (
	"context"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
)

// A server started on a configuration it rejects has no last good one: it
// answers nothing until a good one comes, in SotW, delta and Fetch. It
// answered every type at once with no resources, so an Envoy that
// reconnected to a restarted control plane with a broken file dropped every
// listener and cluster it held.
func TestNothingIsServedBeforeTheFirstGoodConfig(t *testing.T) {
	e := start(t, Options{})
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ListenerType})
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.SecretType})
	d := e.delta(t)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: proxylessNode("client"), TypeUrl: resourcev3.ListenerType, ResourceNamesSubscribe: []string{"reviews.default.svc.cluster.local:9080"}})
	c.none(300 * time.Millisecond)
	// A mesh the groups' gate refuses changes nothing.
	bad := mesh(map[string][]string{"reviews.default.svc.cluster.local": {"0.0.0.0"}}) // fakeGen's Validate refuses it
	if err := e.srv.Update(bad); err == nil {
		t.Fatal("the bad mesh was accepted: the test shows nothing")
	}
	c.none(200 * time.Millisecond)
	select {
	case r := <-d.resp:
		t.Fatalf("delta answered before any good config: %s %d resources", r.GetTypeUrl(), len(r.GetResources()))
	default:
	}
	_, err := e.srv.fetch(context.Background(), &discoveryv3.DiscoveryRequest{Node: gatewayNode("gw")}, resourcev3.ClusterType)
	wantCode(t, err, codes.Unavailable, "no good configuration")

	// The first good configuration answers every parked request, also the
	// types with no resource (the gateway has no secrets: an empty SDS
	// answer is due all the same).
	if err := e.srv.Update(mesh(map[string][]string{"reviews.default.svc.cluster.local": {"10.0.0.1"}})); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for range 3 {
		r := c.next()
		got[r.GetTypeUrl()] = len(r.GetResources())
	}
	if got[resourcev3.ClusterType] == 0 || len(got) != 3 {
		t.Fatalf("first answers: %v", got)
	}
	if r := d.next(); r.GetTypeUrl() != resourcev3.ListenerType {
		t.Fatalf("delta: %v", r)
	}
	if _, err := e.srv.fetch(context.Background(), &discoveryv3.DiscoveryRequest{Node: gatewayNode("gw")}, resourcev3.ClusterType); err != nil {
		t.Fatal(err)
	}
}
