package xds

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func wantCode(t *testing.T, err error, code codes.Code, text string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(err.Error(), text) {
		t.Fatalf("error = %v, want %s containing %q", err, code, text)
	}
}

func TestUnknownTypeURLGetsOneEmptyResponse(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: "type.googleapis.com/made.Up"})
	r := c.next()
	if r.GetTypeUrl() != "type.googleapis.com/made.Up" || len(r.GetResources()) != 0 || r.GetVersionInfo() != unsupportedVersion {
		t.Fatalf("response = %v", r)
	}
	c.ack(r)
	c.none(200 * time.Millisecond)
	// The stream still serves real types.
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType})
	if got := len(c.next().GetResources()); got != 2 {
		t.Fatalf("clusters = %d, want 2", got)
	}
}

func TestTooManyTypesOnOneStream(t *testing.T) {
	e := start(t, Options{})
	c := e.sotw(t)
	for i := 0; i <= maxTypesPerStream; i++ {
		if err := c.stream.Send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: fmt.Sprintf("type.googleapis.com/made.Up%d", i)}); err != nil {
			break
		}
	}
	for {
		select {
		case <-c.resp:
			continue
		case err := <-c.err:
			wantCode(t, err, codes.ResourceExhausted, "resource types")
			return
		case <-time.After(5 * time.Second):
			t.Fatal("stream not closed")
		}
	}
}

func TestGarbageNonceIsIgnored(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
	r := c.next()
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, VersionInfo: "garbage", ResponseNonce: "not-a-nonce-&<>%00"})
	c.none(200 * time.Millisecond)
	st := e.srv.Status().Nodes[0].Types["CDS"]
	if st.Acks != 0 || st.Nacks != 0 {
		t.Fatalf("garbage nonce counted: %+v", st)
	}
	// The real ACK still works and a change is pushed.
	c.ack(r)
	if err := e.srv.Update(mesh(map[string][]string{"ratings.default.svc.cluster.local": {"10.0.0.4"}})); err != nil {
		t.Fatal(err)
	}
	if got := len(c.next().GetResources()); got != 1 {
		t.Fatalf("clusters = %d, want 1", got)
	}
}

func TestHugeNameListIsRejected(t *testing.T) {
	e := start(t, Options{MaxResourceNames: 100})
	names := make([]string, 101)
	for i := range names {
		names[i] = fmt.Sprintf("outbound|80||s%d.default.svc.cluster.local", i)
	}
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType, ResourceNames: names})
	wantCode(t, c.failure(), codes.InvalidArgument, "101 resource names")

	// Delta: the cap applies to the subscription as it accumulates.
	d := e.delta(t)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: names[:60]})
	d.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: names[60:]})
	wantCode(t, d.failure(), codes.InvalidArgument, "101 resource names subscribed")
}

func TestFirstRequestWithoutNode(t *testing.T) {
	e := start(t, Options{})
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ListenerType})
	wantCode(t, c.failure(), codes.InvalidArgument, "must carry a node")

	d := e.delta(t)
	d.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType})
	wantCode(t, d.failure(), codes.InvalidArgument, "must carry a node")

	bad := e.sotw(t)
	bad.send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "ingress~1~a.b~b.svc"}, TypeUrl: resourcev3.ListenerType})
	wantCode(t, bad.failure(), codes.InvalidArgument, `kind "ingress"`)
}

func TestNodeChangingMidStream(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(map[string][]string{"reviews.default.svc.cluster.local": {"10.0.0.1"}})); err != nil {
		t.Fatal(err)
	}
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ListenerType})
	c.next()
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("other"), TypeUrl: resourcev3.ClusterType})
	wantCode(t, c.failure(), codes.InvalidArgument, "node changed")
}

func TestMissingTypeURLOnADS(t *testing.T) {
	e := start(t, Options{})
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw")})
	wantCode(t, c.failure(), codes.InvalidArgument, "type URL is required")
}

func TestPerTypeServiceAndFetch(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lds, err := listenerservice.NewListenerDiscoveryServiceClient(e.conn).StreamListeners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := lds.Send(&discoveryv3.DiscoveryRequest{Node: proxylessNode("p")}); err != nil {
		t.Fatal(err)
	}
	r, err := lds.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if r.GetTypeUrl() != resourcev3.ListenerType || len(r.GetResources()) != 1 {
		t.Fatalf("LDS stream response = %v", r)
	}

	f, err := listenerservice.NewListenerDiscoveryServiceClient(e.conn).FetchListeners(ctx, &discoveryv3.DiscoveryRequest{Node: proxylessNode("p")})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.GetResources()) != 1 || f.GetVersionInfo() == "" {
		t.Fatalf("fetch = %v", f)
	}
	// A name repeated many times is answered once, not once per repetition.
	name := resourceNames(t, f)[0]
	dup := make([]string, 5000)
	for i := range dup {
		dup[i] = name
	}
	f, err = listenerservice.NewListenerDiscoveryServiceClient(e.conn).FetchListeners(ctx, &discoveryv3.DiscoveryRequest{Node: proxylessNode("p"), ResourceNames: dup})
	if err != nil || len(f.GetResources()) != 1 {
		t.Fatalf("fetch of one name repeated 5,000 times: %d resources, %v", len(f.GetResources()), err)
	}
	if _, err := listenerservice.NewListenerDiscoveryServiceClient(e.conn).FetchListeners(ctx, &discoveryv3.DiscoveryRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("fetch without node: %v", err)
	}
}

func TestTranslatorPanicRejectsTheMesh(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
	c.ack(c.next())
	err := e.srv.Update(mesh(map[string][]string{"panic.default.svc.cluster.local": {"10.0.0.1"}}))
	if err == nil || !strings.Contains(err.Error(), "translator bug") {
		t.Fatalf("Update = %v, want the panic as an error", err)
	}
	c.none(200 * time.Millisecond)
	if !e.srv.Ready() || e.srv.Status().Version != "1" {
		t.Fatal("last good mesh lost")
	}
}
