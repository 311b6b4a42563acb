package xds

import (
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// One group's failure must not freeze the mesh when the mesh has passed the
// runner's gate: the group keeps its last good config and says why.
func TestIsolatedGroupFailureDoesNotBlockOthers(t *testing.T) {
	e := start(t, Options{IsolateGroupFailures: true})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	good := e.sotw(t)
	good.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
	good.ack(good.next())
	poisoned := e.sotw(t)
	poisoned.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("poison"), TypeUrl: resourcev3.ClusterType})
	before := poisoned.next()
	poisoned.ack(before)

	next := mesh(map[string][]string{
		"conflict.default.svc.cluster.local": {"10.0.0.7"},
		"details.default.svc.cluster.local":  {"10.0.0.1"},
	})
	if err := e.srv.Update(next); err != nil {
		t.Fatalf("Update = %v; a failure of one proxy group must not reject the mesh", err)
	}
	got := resourceNames(t, good.next())
	if !strings.Contains(strings.Join(got, ","), "conflict.default.svc.cluster.local") {
		t.Fatalf("the healthy group did not get the new config: %v", got)
	}
	poisoned.none(300 * time.Millisecond)
	var groupErr string
	for _, g := range e.srv.Status().Groups {
		if strings.Contains(g.Key, "poison") {
			groupErr = g.Error
		}
	}
	if !strings.Contains(groupErr, "conflicts for this label set") {
		t.Fatalf("the failing group's status error = %q", groupErr)
	}
	if e.srv.ConfigError() != nil {
		t.Fatalf("the mesh was accepted, yet ConfigError = %v", e.srv.ConfigError())
	}
	// When the conflict goes away the group catches up and its error clears.
	if err := e.srv.Update(mesh(map[string][]string{"details.default.svc.cluster.local": {"10.0.0.1"}})); err != nil {
		t.Fatal(err)
	}
	poisoned.next()
	for _, g := range e.srv.Status().Groups {
		if strings.Contains(g.Key, "poison") && g.Error != "" {
			t.Fatalf("error not cleared: %s", g.Error)
		}
	}
}

func TestProxyGroupsAreBounded(t *testing.T) {
	e := start(t, Options{MaxGroups: 2})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"a", "b"} {
		c := e.sotw(t)
		c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode(app), TypeUrl: resourcev3.ClusterType})
		c.next()
	}
	_, err := e.srv.groupFor(gatewayNode("c"))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third label set: %v, want ResourceExhausted", err)
	}
	// Existing groups keep accepting nodes.
	if _, err := e.srv.groupFor(gatewayNode("a")); err != nil {
		t.Fatal(err)
	}
}
