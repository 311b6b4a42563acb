package xds

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

	"github.com/rosenmesh/rosen/controlplane/model"
)

var bookinfo = map[string][]string{
	"details.default.svc.cluster.local": {"10.0.0.1"},
	"reviews.default.svc.cluster.local": {"10.0.0.2", "10.0.0.3"},
}

func TestGatewayAndProxylessGetTheirGroupsConfig(t *testing.T) {
	e := start(t, Options{})
	if e.srv.Ready() {
		t.Fatal("ready before the first mesh")
	}
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	if !e.srv.Ready() {
		t.Fatal("not ready after a good mesh")
	}
	gw, pl := e.sotw(t), e.sotw(t)
	gw.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ListenerType})
	pl.send(&discoveryv3.DiscoveryRequest{Node: proxylessNode("client-1"), TypeUrl: resourcev3.ListenerType})
	if got := resourceNames(t, gw.next()); !reflect.DeepEqual(got, []string{"listener-router-istio-system-gw"}) {
		t.Fatalf("gateway listeners = %v", got)
	}
	if got := resourceNames(t, pl.next()); !reflect.DeepEqual(got, []string{"listener-proxyless--"}) {
		t.Fatalf("proxyless listeners = %v", got)
	}
	// Two gateways with the same labels share a group; a third does not.
	gw2, gw3 := e.sotw(t), e.sotw(t)
	gw2.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
	gw3.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("other"), TypeUrl: resourcev3.ClusterType})
	gw2.next()
	gw3.next()
	st := e.srv.Status()
	var keys []string
	for _, g := range st.Groups {
		keys = append(keys, g.Key)
	}
	want := []string{"proxyless", `router/istio-system/"app"="gw","istio"="ingressgateway"`, `router/istio-system/"app"="other","istio"="ingressgateway"`}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("groups = %q, want %q", keys, want)
	}
	if got := e.gen.translations.Load(); got != 3 {
		t.Fatalf("translations = %d, want one per group (3)", got)
	}
	if got := value(t, e.srv.metrics.connected.WithLabelValues("router")); got != 3 {
		t.Fatalf("connected routers = %v, want 3", got)
	}
}

func TestRDSPerNameSubscriptionIsAnswered(t *testing.T) {
	// NOTES.md: SnapshotCache in ADS mode stays silent for a subset of names.
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: proxylessNode("p"), TypeUrl: resourcev3.EndpointType,
		ResourceNames: []string{"outbound|9080||reviews.default.svc.cluster.local"}})
	r := c.next()
	if got := resourceNames(t, r); !reflect.DeepEqual(got, []string{"outbound|9080||reviews.default.svc.cluster.local"}) {
		t.Fatalf("EDS = %v", got)
	}
	c.ack(r, "outbound|9080||reviews.default.svc.cluster.local")
	c.none(200 * time.Millisecond)
}

func TestRejectedUpdateKeepsLastGoodConfig(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
	first := c.next()
	c.ack(first)

	bad := mesh(map[string][]string{"invalid.default.svc.cluster.local": {"10.0.0.9"}, "details.default.svc.cluster.local": {"10.0.0.1"}})
	err := e.srv.Update(bad)
	var errs model.Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("Update error = %v, want one model error", err)
	}
	var fe *model.FieldError
	if !errors.As(errs[0], &fe) || fe.Source.File != "svc.yaml" || fe.Field != "spec.hosts[0]" || !strings.Contains(fe.Message, "proxy group router/istio-system/") {
		t.Fatalf("error = %#v, want the file, field and proxy group", errs[0])
	}
	c.none(300 * time.Millisecond)
	if e.srv.ConfigError() == nil {
		t.Fatal("ConfigError is nil after a rejection")
	}
	st := e.srv.Status()
	if st.Version != "1" || len(st.ConfigError) != 1 || st.ConfigError[0].Source.Name != "invalid.default.svc.cluster.local" {
		t.Fatalf("status = version %s, errors %+v", st.Version, st.ConfigError)
	}
	if got := value(t, e.srv.metrics.rejects); got != 1 {
		t.Fatalf("rejects = %v", got)
	}

	// A client connecting now in the same group still gets the good config.
	c2 := e.sotw(t)
	c2.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
	if got, want := resourceNames(t, c2.next()), resourceNames(t, first); !reflect.DeepEqual(got, want) {
		t.Fatalf("after rejection got %v, want %v", got, want)
	}

	// A good mesh clears the error and is pushed.
	good := mesh(map[string][]string{"ratings.default.svc.cluster.local": {"10.0.0.4"}})
	if err := e.srv.Update(good); err != nil {
		t.Fatal(err)
	}
	if got := resourceNames(t, c.next()); !reflect.DeepEqual(got, []string{"outbound|9080||ratings.default.svc.cluster.local"}) {
		t.Fatalf("after fix got %v", got)
	}
	if e.srv.ConfigError() != nil || e.srv.Status().Version != "2" {
		t.Fatalf("error %v version %s after a good mesh", e.srv.ConfigError(), e.srv.Status().Version)
	}
}

func TestEndpointOnlyUpdatePushesOnlyEDS(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	c := e.sotw(t)
	node := gatewayNode("gw")
	var eds *discoveryv3.DiscoveryResponse
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.ListenerType, resourcev3.RouteType, resourcev3.EndpointType} {
		names := []string(nil)
		switch typ {
		case resourcev3.RouteType:
			names = []string{"http.router"}
		case resourcev3.EndpointType:
			names = []string{"outbound|9080||details.default.svc.cluster.local", "outbound|9080||reviews.default.svc.cluster.local"}
		}
		c.send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: typ, ResourceNames: names})
		r := c.next()
		if len(r.GetResources()) == 0 {
			t.Fatalf("%s: no resources", typ)
		}
		c.ack(r, names...)
		eds = r
	}
	translations := e.gen.translations.Load()

	moved := mesh(map[string][]string{
		"details.default.svc.cluster.local": {"10.0.0.1"},
		"reviews.default.svc.cluster.local": {"10.0.0.2", "10.0.0.5"},
	})
	if err := e.srv.Update(moved); err != nil {
		t.Fatal(err)
	}
	r := c.next()
	if r.GetTypeUrl() != resourcev3.EndpointType {
		t.Fatalf("pushed %s, want only EDS", r.GetTypeUrl())
	}
	// Only the changed assignment is sent (EDS is not full-state in SotW).
	if got := resourceNames(t, r); !reflect.DeepEqual(got, []string{"outbound|9080||reviews.default.svc.cluster.local"}) {
		t.Fatalf("EDS push = %v", got)
	}
	c.ack(r, "outbound|9080||details.default.svc.cluster.local", "outbound|9080||reviews.default.svc.cluster.local")
	c.none(300 * time.Millisecond)
	if got := e.gen.translations.Load(); got != translations {
		t.Fatalf("routes re-translated: %d full translations, want %d", got, translations)
	}
	if got := value(t, e.srv.metrics.translations.WithLabelValues("endpoints")); got != 1 {
		t.Fatalf("endpoint translations = %v, want 1", got)
	}
	if r.GetVersionInfo() == eds.GetVersionInfo() {
		t.Fatal("EDS version did not change")
	}

	// An endpoint-only change that fails the gate is rejected too.
	bad := mesh(map[string][]string{
		"details.default.svc.cluster.local": {"10.0.0.1"},
		"reviews.default.svc.cluster.local": {"0.0.0.0"},
	})
	if err := e.srv.Update(bad); err == nil {
		t.Fatal("bad endpoints accepted")
	}
	c.none(200 * time.Millisecond)

	// A structural change translates again.
	if err := e.srv.Update(mesh(map[string][]string{"details.default.svc.cluster.local": {"10.0.0.1"}})); err != nil {
		t.Fatal(err)
	}
	if got := e.gen.translations.Load(); got != translations+1 {
		t.Fatalf("translations = %d, want %d", got, translations+1)
	}
}

func TestUnchangedMeshSendsNothing(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
	c.ack(c.next())
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	c.none(300 * time.Millisecond)
	g := e.srv.groups[`router/istio-system/"app"="gw","istio"="ingressgateway"`]
	if _, v := g.snapshot(resourcev3.ClusterType); !strings.HasSuffix(v, ".1") {
		t.Fatalf("CDS cache version %s: unchanged resources were handed to the cache again", v)
	}
}

func TestNackIsRecordedAndNotResent(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: proxylessNode("nacker"), TypeUrl: resourcev3.ClusterType})
	r := c.next()
	// Like grpc-go on a first rejection: version empty (nothing accepted yet).
	nack := func(r *discoveryv3.DiscoveryResponse, version string) {
		c.send(&discoveryv3.DiscoveryRequest{TypeUrl: r.GetTypeUrl(), VersionInfo: version, ResponseNonce: r.GetNonce(),
			ErrorDetail: &rpcstatus.Status{Code: 3, Message: "outbound|9080||details: bad lb policy"}})
	}
	nack(r, "")
	// Count responses for one second: a NACK loop would make thousands.
	deadline := time.After(time.Second)
	count := 0
loop:
	for {
		select {
		case resp := <-c.resp:
			count++
			nack(resp, "")
		case <-deadline:
			break loop
		}
	}
	if count != 0 {
		t.Fatalf("%d responses after a NACK within 1s, want 0", count)
	}
	// The same NACK sent twice is logged and counted once.
	nack(r, "")
	time.Sleep(50 * time.Millisecond)
	if got := value(t, e.srv.metrics.nacks.WithLabelValues("CDS")); got != 1 {
		t.Fatalf("NACK counter = %v, want 1", got)
	}
	st := e.srv.Status()
	if len(st.Nodes) != 1 {
		t.Fatalf("nodes = %+v", st.Nodes)
	}
	cds := st.Nodes[0].Types["CDS"]
	if cds.Nacks != 1 || cds.Acks != 0 || cds.LastNack == nil || cds.LastNack.Message != "outbound|9080||details: bad lb policy" ||
		cds.LastNack.Nonce != r.GetNonce() || cds.LastNack.Version != r.GetVersionInfo() || cds.SentVersion != r.GetVersionInfo() {
		t.Fatalf("CDS status = %+v", cds)
	}
	// A new mesh is sent, and the ACK recorded.
	if err := e.srv.Update(mesh(map[string][]string{"ratings.default.svc.cluster.local": {"10.0.0.4"}})); err != nil {
		t.Fatal(err)
	}
	r2 := c.next()
	c.ack(r2)
	time.Sleep(50 * time.Millisecond)
	cds = e.srv.Status().Nodes[0].Types["CDS"]
	if cds.Acks != 1 || cds.AckedVersion != r2.GetVersionInfo() || cds.AckedNonce != r2.GetNonce() || cds.LastNack == nil {
		t.Fatalf("CDS status after ACK = %+v", cds)
	}
}
