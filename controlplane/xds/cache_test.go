package xds

import (
	"net"
	"reflect"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

const (
	detailsCluster = "outbound|9080||details.default.svc.cluster.local"
	reviewsCluster = "outbound|9080||reviews.default.svc.cluster.local"
	ratingsCluster = "outbound|9080||ratings.default.svc.cluster.local"
)

// subscribeEDS opens a SotW stream of a gateway on EDS for names and ACKs
// the first response.
func (e *env) subscribeEDS(t *testing.T, names ...string) *sotw {
	t.Helper()
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType, ResourceNames: names})
	c.ack(c.next(), names...)
	return c
}

func (e *env) gatewayGroup(t *testing.T) *group {
	t.Helper()
	e.srv.mu.RLock()
	defer e.srv.mu.RUnlock()
	g := e.srv.groups[`router/istio-system/"app"="gw","istio"="ingressgateway"`]
	if g == nil {
		t.Fatal("no gateway group")
	}
	return g
}

// subscriptions returns the refs of each interned EDS subscription by size.
func subscriptions(g *group, typeURL string) map[int]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[int]int{}
	for k, s := range g.types[typeURL].subs {
		out[k.n] += s.refs
	}
	return out
}

func TestStreamsWithTheSameNamesShareOneSubscription(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	a := e.subscribeEDS(t, detailsCluster, reviewsCluster)
	e.subscribeEDS(t, reviewsCluster, detailsCluster) // same set, other order
	e.subscribeEDS(t, detailsCluster)
	g := e.gatewayGroup(t)
	if got := subscriptions(g, resourcev3.EndpointType); !reflect.DeepEqual(got, map[int]int{2: 2, 1: 1}) {
		t.Fatalf("subscriptions (size → streams) = %v, want {2: 2, 1: 1}", got)
	}
	g.mu.Lock()
	n := len(g.types[resourcev3.EndpointType].subs)
	g.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d interned subscriptions, want 2", n)
	}
	// A stream that ends releases its subscription.
	a.stream.CloseSend()
	a.failure()
	deadline := time.Now().Add(5 * time.Second)
	for !reflect.DeepEqual(subscriptions(g, resourcev3.EndpointType), map[int]int{2: 1, 1: 1}) {
		if time.Now().After(deadline) {
			t.Fatalf("subscriptions after close = %v", subscriptions(g, resourcev3.EndpointType))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEndpointChangeReachesOnlyItsSubscribers(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	details := e.subscribeEDS(t, detailsCluster)
	both := e.subscribeEDS(t, detailsCluster, reviewsCluster)
	if err := e.srv.Update(mesh(map[string][]string{
		"details.default.svc.cluster.local": {"10.0.0.1"},
		"reviews.default.svc.cluster.local": {"10.0.0.2", "10.0.0.9"},
	})); err != nil {
		t.Fatal(err)
	}
	r := both.next()
	if got := resourceNames(t, r); !reflect.DeepEqual(got, []string{reviewsCluster}) {
		t.Fatalf("EDS push = %v, want only the changed assignment", got)
	}
	both.ack(r, detailsCluster, reviewsCluster)
	details.none(200 * time.Millisecond)

	// The untouched stream is up to date: its next change is sent alone too.
	if err := e.srv.Update(mesh(map[string][]string{
		"details.default.svc.cluster.local": {"10.0.0.7"},
		"reviews.default.svc.cluster.local": {"10.0.0.2", "10.0.0.9"},
	})); err != nil {
		t.Fatal(err)
	}
	if got := resourceNames(t, details.next()); !reflect.DeepEqual(got, []string{detailsCluster}) {
		t.Fatalf("details push = %v", got)
	}
	if got := resourceNames(t, both.next()); !reflect.DeepEqual(got, []string{detailsCluster}) {
		t.Fatalf("second push = %v", got)
	}
}

func TestNewlySubscribedNameIsSentAlone(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType, ResourceNames: []string{detailsCluster}})
	r := c.next()
	c.ack(r, detailsCluster)
	// Envoy adds a cluster: same version and nonce, one more name.
	c.ack(r, detailsCluster, reviewsCluster)
	r2 := c.next()
	if got := resourceNames(t, r2); !reflect.DeepEqual(got, []string{reviewsCluster}) {
		t.Fatalf("response to the new name = %v", got)
	}
	// Dropping a name sends nothing; the ACK of the same names neither.
	c.ack(r2, reviewsCluster)
	c.ack(r2, reviewsCluster)
	c.none(200 * time.Millisecond)
}

func TestNamedClusterSubscriptionIsFullState(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	// grpc-go asks for clusters by name; a CDS response carries all of them.
	sub := func(names ...string) *sotw {
		c := e.sotw(t)
		c.send(&discoveryv3.DiscoveryRequest{Node: proxylessNode("p"), TypeUrl: resourcev3.ClusterType, ResourceNames: names})
		r := c.next()
		if got := resourceNames(t, r); !reflect.DeepEqual(got, sortedStrings(names)) {
			t.Fatalf("CDS %v = %v", names, got)
		}
		c.ack(r, names...)
		return c
	}
	details, reviews := sub(detailsCluster), sub(detailsCluster, reviewsCluster)
	// ratings appears, reviews goes away.
	if err := e.srv.Update(mesh(map[string][]string{
		"details.default.svc.cluster.local": {"10.0.0.1"},
		"ratings.default.svc.cluster.local": {"10.0.0.4"},
	})); err != nil {
		t.Fatal(err)
	}
	if got := resourceNames(t, reviews.next()); !reflect.DeepEqual(got, []string{detailsCluster}) {
		t.Fatalf("CDS after reviews was deleted = %v, want the full subscribed state", got)
	}
	details.none(200 * time.Millisecond)
}

func TestChangeLogFallsBackToFullResponse(t *testing.T) {
	tc := newTypeCache(resourcev3.EndpointType, "p.")
	tc.maxLog = 3
	st := &stream{wakeCh: make(chan struct{}, 1), watches: map[string]*watch{}}
	put := func(names ...string) {
		var es []*entry
		for _, n := range names {
			e, err := newEntry(tc.typeURL, n, nil)
			if err != nil {
				t.Fatal(err)
			}
			es = append(es, e)
		}
		tc.apply(es, nil)
	}
	put("a", "b", "c")
	w := st.watchFor(tc)
	sub, err := tc.intern(sotwKey([]string{"a", "b"}, false), func() ([]string, error) { return []string{"a", "b"}, nil })
	if err != nil {
		t.Fatal(err)
	}
	w.sub = sub
	w.markSent()
	w.ready = false // a response in flight: the watch does not move
	put("a")
	put("c")
	if got := names(w.changedEntries()); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("changed since = %v, want [a]", got)
	}
	put("c")
	put("c") // the log passes maxLog: the watch's version is no longer covered
	if tc.logFloor <= w.sent {
		t.Fatalf("log floor %d, watch at %d: want the floor past it", tc.logFloor, w.sent)
	}
	if got := names(w.changedEntries()); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("fallback = %v, want every subscribed resource", got)
	}
	// A watch that keeps up lets the log shrink to nothing.
	w.ready = true
	w.markSent()
	put("z")
	if len(tc.log) != 0 {
		t.Fatalf("log = %v after every watch moved on", tc.log)
	}
}

func names(es []*entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.name)
	}
	return sortedStrings(out)
}

func TestServerWithoutServerOptionsStillServes(t *testing.T) {
	srv := New(zaptest.NewLogger(t), &fakeGen{}, Options{Registry: prometheus.NewRegistry()})
	defer srv.Close()
	if err := srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer() // no ServerOptions: no shared-body codec
	srv.Register(g)
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	e := &env{srv: srv, conn: conn}
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
	r := c.next()
	if got := resourceNames(t, r); !reflect.DeepEqual(got, []string{detailsCluster, reviewsCluster}) {
		t.Fatalf("CDS = %v", got)
	}
	if r.GetNonce() == "" {
		t.Fatal("no nonce")
	}
	d := e.delta(t)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
	if got := len(d.next().GetResources()); got != 2 {
		t.Fatalf("delta CDS has %d resources", got)
	}
}

func deltaNames(r *discoveryv3.DeltaDiscoveryResponse) []string {
	var out []string
	for _, x := range r.GetResources() {
		out = append(out, x.GetName())
	}
	return sortedStrings(out)
}

func TestDeltaChangesRemovalsAndInitialVersions(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	d := e.delta(t)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType,
		ResourceNamesSubscribe: []string{detailsCluster, reviewsCluster}})
	first := d.next()
	if got := deltaNames(first); !reflect.DeepEqual(got, []string{detailsCluster, reviewsCluster}) {
		t.Fatalf("first delta EDS = %v", got)
	}
	versions := map[string]string{}
	for _, r := range first.GetResources() {
		versions[r.GetName()] = r.GetVersion()
	}
	d.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResponseNonce: first.GetNonce()})

	// An endpoint change sends only the changed assignment.
	if err := e.srv.Update(mesh(map[string][]string{
		"details.default.svc.cluster.local": {"10.0.0.1"},
		"reviews.default.svc.cluster.local": {"10.0.0.2", "10.0.0.8"},
	})); err != nil {
		t.Fatal(err)
	}
	r := d.next()
	if got := deltaNames(r); !reflect.DeepEqual(got, []string{reviewsCluster}) || len(r.GetRemovedResources()) != 0 {
		t.Fatalf("delta push = %v removed %v", got, r.GetRemovedResources())
	}
	// reviews goes away: its subscribers are told.
	if err := e.srv.Update(mesh(map[string][]string{"details.default.svc.cluster.local": {"10.0.0.1"}})); err != nil {
		t.Fatal(err)
	}
	r = d.next()
	if len(r.GetResources()) != 0 || !reflect.DeepEqual(r.GetRemovedResources(), []string{reviewsCluster}) {
		t.Fatalf("delta after deletion: resources %v removed %v", deltaNames(r), r.GetRemovedResources())
	}

	// A reconnecting client that holds details at its version is not sent it
	// again, and learns that reviews is gone.
	d2 := e.delta(t)
	d2.send(&discoveryv3.DeltaDiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType,
		ResourceNamesSubscribe: []string{detailsCluster, reviewsCluster}, InitialResourceVersions: versions})
	r = d2.next()
	if len(r.GetResources()) != 0 || !reflect.DeepEqual(r.GetRemovedResources(), []string{reviewsCluster}) {
		t.Fatalf("reconnect: resources %v removed %v", deltaNames(r), r.GetRemovedResources())
	}
	// Unsubscribing sends nothing; subscribing again sends the resource.
	d2.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesUnsubscribe: []string{detailsCluster}})
	d2.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: []string{detailsCluster}})
	if got := deltaNames(d2.next()); !reflect.DeepEqual(got, []string{detailsCluster}) {
		t.Fatalf("re-subscribe = %v", got)
	}
}

func TestDeltaDuplicateNamesKeepSubscriptionsApart(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	// x subscribes to details twice and unsubscribes it once: it holds
	// nothing. y subscribes to details once: it must get it, not x's set
	// (counting the duplicate would give both the same key).
	x := e.delta(t)
	x.send(&discoveryv3.DeltaDiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType,
		ResourceNamesSubscribe: []string{detailsCluster, detailsCluster}})
	if got := deltaNames(x.next()); !reflect.DeepEqual(got, []string{detailsCluster}) {
		t.Fatalf("x = %v", got)
	}
	x.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesUnsubscribe: []string{detailsCluster}})
	time.Sleep(50 * time.Millisecond) // let x's unsubscription land first (either order must work)
	y := e.delta(t)
	y.send(&discoveryv3.DeltaDiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType,
		ResourceNamesSubscribe: []string{detailsCluster}})
	if got := deltaNames(y.next()); !reflect.DeepEqual(got, []string{detailsCluster}) {
		t.Fatalf("y = %v", got)
	}
	// After an endpoint change, only y (still subscribed) hears about details.
	if err := e.srv.Update(mesh(map[string][]string{
		"details.default.svc.cluster.local": {"10.0.0.6"},
		"reviews.default.svc.cluster.local": {"10.0.0.2", "10.0.0.3"},
	})); err != nil {
		t.Fatal(err)
	}
	if got := deltaNames(y.next()); !reflect.DeepEqual(got, []string{detailsCluster}) {
		t.Fatalf("y after change = %v", got)
	}
	select {
	case r := <-x.resp:
		t.Fatalf("x, unsubscribed, got %v", deltaNames(r))
	case <-time.After(200 * time.Millisecond):
	}
}

// A subscription chosen by a request is found again by the same encoded
// names, and forgotten with its last reference.
func TestSubscriptionFoundByRun(t *testing.T) {
	tc := newTypeCache(resourcev3.EndpointType, "p.")
	raw, err := proto.Marshal(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNames: []string{detailsCluster, reviewsCluster}})
	if err != nil {
		t.Fatal(err)
	}
	var r sotwReq
	if err := r.decode([][]byte{raw}); err != nil {
		t.Fatal(err)
	}
	if tc.byRunOf(r.run) != nil {
		t.Fatal("found before any request chose it")
	}
	a, err := tc.intern(r.subKey(false), r.names)
	if err != nil {
		t.Fatal(err)
	}
	tc.addRun(a, r.run)
	b := tc.byRunOf(r.run)
	if b != a || a.refs != 2 {
		t.Fatalf("by run: %p (refs %d), want %p", b, a.refs, a)
	}
	tc.release(a)
	tc.release(b)
	if len(tc.subs) != 0 || len(tc.byRun) != 0 {
		t.Fatalf("left after the last release: %d subscriptions, %d runs", len(tc.subs), len(tc.byRun))
	}
}
