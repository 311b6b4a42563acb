package xds

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

const (
	adsSotwMethod  = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
	adsDeltaMethod = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
)

// rawStream opens an ADS stream that sends bytes as they are.
func (e *env) rawStream(t *testing.T, method string) grpc.ClientStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	s, err := e.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A request that is not a valid message ends the stream with an error the
// client can read, not with an OK status as if the server had nothing more
// to say.
func TestMalformedRequestOnTheWireIsAnError(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	good := marshal(t, &discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
	cases := map[string][]byte{
		"truncated tag varint":     append(append([]byte{}, good...), 0x9a),
		"truncated length varint":  append(append([]byte{}, good...), 0x1a, 0x80),
		"name longer than message": append(append([]byte{}, good...), 0x1a, 0x10, 'x'),
		"field longer than message": append(append([]byte{}, good...),
			0x22, 0x7f, 't'),
		"end group alone": append(append([]byte{}, good...), 0x0c),
		"field number 0":  append(append([]byte{}, good...), 0x02, 0x00),
		"wire type 7":     append(append([]byte{}, good...), 0x1f),
		"overlong varint tag": append(append([]byte{}, good...),
			0x9a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 1, 'x'),
		"invalid UTF-8 in type URL": marshalInvalidTypeURL(t),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			var want discoveryv3.DiscoveryRequest
			if err := proto.Unmarshal(b, &want); err == nil {
				t.Fatalf("protobuf accepts the case: %v", &want)
			}
			for _, method := range []string{adsSotwMethod, adsDeltaMethod} {
				s := e.rawStream(t, method)
				if err := s.SendMsg(b); err != nil {
					t.Fatal(err)
				}
				var out []byte
				err := s.RecvMsg(&out)
				if err == nil {
					t.Fatalf("%s: response to a malformed request (%d bytes)", method, len(out))
				}
				if status.Code(err) == codes.OK || !strings.Contains(err.Error(), "unmarshal") {
					t.Fatalf("%s: stream ended with %v, want an error naming the malformed request", method, err)
				}
			}
		})
	}
	// The server still serves.
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
	if got := len(c.next().GetResources()); got != 2 {
		t.Fatalf("clusters = %d, want 2", got)
	}
}

func marshalInvalidTypeURL(t *testing.T) []byte {
	b := marshal(t, &discoveryv3.DiscoveryRequest{Node: gatewayNode("gw")})
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	return protowire.AppendBytes(b, []byte("type.googleapis.com/\xff"))
}

// A varint of ten bytes whose last byte is above 1 overflows 64 bits:
// protobuf refuses it, so must the decoder, whole or in pieces.
func TestOverlongVarintIsRefused(t *testing.T) {
	b := []byte{0x9a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 1, 'x'} // field 3 "x", tag overflowing
	var want discoveryv3.DiscoveryRequest
	if err := proto.Unmarshal(b, &want); err == nil {
		t.Fatal("protobuf accepts it")
	}
	for i := 0; i <= len(b); i++ {
		var r sotwReq
		if err := r.decode([][]byte{b[:i], b[i:]}); err == nil {
			t.Fatalf("split at %d: accepted, %d names", i, r.count)
		}
	}
	l := []byte{0x1a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 'x'} // length overflowing
	if err := proto.Unmarshal(l, &want); err == nil {
		t.Fatal("protobuf accepts it")
	}
	for i := 0; i <= len(l); i++ {
		var r sotwReq
		if err := r.decode([][]byte{l[:i], l[i:]}); err == nil {
			t.Fatalf("split at %d: accepted, %d names", i, r.count)
		}
	}
}

// victim is a gateway of another group, subscribed to CDS and ACKing;
// check that it still gets a change after the hostile streams.
func victimSees(t *testing.T, e *env, v *sotw, services map[string][]string, want int) {
	t.Helper()
	if err := e.srv.Update(mesh(services)); err != nil {
		t.Fatal(err)
	}
	r := v.next()
	if got := len(r.GetResources()); got != want {
		t.Fatalf("victim: clusters = %d, want %d", got, want)
	}
	v.ack(r)
}

func TestHostileSotwRequestsLeaveOthersServed(t *testing.T) {
	e := start(t, Options{MaxResourceNames: 1000})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	v := e.sotw(t)
	v.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("victim"), TypeUrl: resourcev3.ClusterType})
	v.ack(v.next())

	t.Run("nonce of another type", func(t *testing.T) {
		c := e.sotw(t)
		c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
		cds := c.next()
		c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ListenerType})
		lds := c.next()
		// An ACK of CDS with the LDS nonce acknowledges nothing.
		c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, VersionInfo: cds.GetVersionInfo(), ResponseNonce: lds.GetNonce()})
		c.none(100 * time.Millisecond)
		if st := nodeTypes(e, "router~10.0.0.1~gw-1")["CDS"]; st.Acks != 0 {
			t.Fatalf("CDS acked with an LDS nonce: %+v", st)
		}
	})
	t.Run("nonce on the first request and a version never sent", func(t *testing.T) {
		c := e.sotw(t)
		c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType, ResponseNonce: "41", VersionInfo: "never"})
		if got := len(c.next().GetResources()); got != 2 {
			t.Fatalf("clusters = %d", got)
		}
	})
	t.Run("error detail on an ACK of nothing", func(t *testing.T) {
		c := e.sotw(t)
		c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType, ErrorDetail: &rpcstatus.Status{Message: strings.Repeat("é", 10000)}})
		r := c.next()
		c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: r.GetNonce(), ErrorDetail: &rpcstatus.Status{Message: strings.Repeat("é", 10000)}})
		c.none(100 * time.Millisecond)
	})
	t.Run("names with NUL, wildcard mixed, duplicates, 1 MB", func(t *testing.T) {
		c := e.sotw(t)
		names := []string{"a\x00b", wildcardName, detailsCluster, detailsCluster, strings.Repeat("n", 1<<20)}
		c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType, ResourceNames: names})
		r := c.next()
		if got := len(r.GetResources()); got != 2 { // wildcard: everything
			t.Fatalf("endpoints = %d", got)
		}
		c.ack(r, names...)
		c.none(100 * time.Millisecond)
		c.ack(r, names[2:]...) // stale nonce: ignored
	})
	t.Run("too many names", func(t *testing.T) {
		c := e.sotw(t)
		names := make([]string, 1_000_000)
		for i := range names {
			names[i] = "x"
		}
		c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType, ResourceNames: names})
		wantCode(t, c.failure(), codes.InvalidArgument, "resource names")
	})
	t.Run("type URL switching", func(t *testing.T) {
		c := e.sotw(t)
		for i, typ := range []string{resourcev3.ClusterType, "type.googleapis.com/x", resourcev3.ListenerType, resourcev3.ClusterType, ""} {
			req := &discoveryv3.DiscoveryRequest{TypeUrl: typ}
			if i == 0 {
				req.Node = gatewayNode("gw")
			}
			c.send(req)
		}
		for {
			select {
			case <-c.resp: // the types asked for before the bad request
				continue
			case err := <-c.err:
				wantCode(t, err, codes.InvalidArgument, "type URL is required")
			case <-time.After(5 * time.Second):
				t.Fatal("stream not closed")
			}
			break
		}
	})
	t.Run("node metadata changes to another group", func(t *testing.T) {
		c := e.sotw(t)
		c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
		c.next()
		n := gatewayNode("gw")
		n.Metadata.Fields[MetaLabels].GetStructValue().Fields["app"].Kind = gatewayNode("victim").Metadata.Fields[MetaLabels].GetStructValue().Fields["app"].Kind
		c.send(&discoveryv3.DiscoveryRequest{Node: n, TypeUrl: resourcev3.ClusterType})
		wantCode(t, c.failure(), codes.InvalidArgument, "node changed")
	})
	victimSees(t, e, v, map[string][]string{"ratings.default.svc.cluster.local": {"10.0.0.4"}}, 1)
}

func nodeTypes(e *env, idPrefix string) map[string]TypeStatus {
	for _, n := range e.srv.Status().Nodes {
		if strings.HasPrefix(n.ID, idPrefix) {
			return n.Types
		}
	}
	return nil
}

func TestHostileDeltaRequests(t *testing.T) {
	e := start(t, Options{MaxResourceNames: 1000})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	t.Run("subscribe and unsubscribe one name in one request", func(t *testing.T) {
		d := e.delta(t)
		d.send(&discoveryv3.DeltaDiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType,
			ResourceNamesSubscribe: []string{detailsCluster, reviewsCluster}, ResourceNamesUnsubscribe: []string{reviewsCluster}})
		r := d.next()
		var got []string
		for _, res := range r.GetResources() {
			got = append(got, res.GetName())
		}
		t.Logf("subscribed+unsubscribed in one request: sent %v", got)
	})
	t.Run("initial versions of unknown names", func(t *testing.T) {
		d := e.delta(t)
		d.send(&discoveryv3.DeltaDiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType,
			ResourceNamesSubscribe:  []string{detailsCluster, "nope", "a\x00b"},
			InitialResourceVersions: map[string]string{"nope": "1", "other": "2", detailsCluster: "garbage"}})
		r := d.next()
		if len(r.GetResources()) != 1 || strings.Join(r.GetRemovedResources(), ",") != "nope" {
			t.Fatalf("resources %d, removed %v", len(r.GetResources()), r.GetRemovedResources())
		}
	})
	t.Run("invalid UTF-8 name", func(t *testing.T) {
		b := marshal(t, &discoveryv3.DeltaDiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType})
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, []byte("x\xff"))
		s := e.rawStream(t, adsDeltaMethod)
		if err := s.SendMsg(b); err != nil {
			t.Fatal(err)
		}
		var out []byte
		if err := s.RecvMsg(&out); status.Code(err) == codes.OK {
			t.Fatalf("stream ended with %v", err)
		}
	})
	t.Run("wildcard mixed with names, then unsubscribed", func(t *testing.T) {
		d := e.delta(t)
		d.send(&discoveryv3.DeltaDiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType,
			ResourceNamesSubscribe: []string{wildcardName, detailsCluster, detailsCluster}})
		if got := len(d.next().GetResources()); got != 2 {
			t.Fatalf("endpoints = %d", got)
		}
		d.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesUnsubscribe: []string{wildcardName, "nope"}})
		time.Sleep(100 * time.Millisecond) // handled before the update
		if err := e.srv.Update(mesh(map[string][]string{"details.default.svc.cluster.local": {"10.9.9.9"}, "reviews.default.svc.cluster.local": {"10.9.9.8"}})); err != nil {
			t.Fatal(err)
		}
		r := d.next()
		if len(r.GetResources()) != 1 || r.GetResources()[0].GetName() != detailsCluster {
			t.Fatalf("after unsubscribing the wildcard: %v", r)
		}
	})
}

// A client that opens thousands of streams from one node and drops them
// leaves nothing behind.
func TestManyStreamsOfOneNode(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	const n = 2000
	streams := make([]discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient, n)
	for i := range streams {
		s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(e.conn).StreamAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType}); err != nil {
			t.Fatal(err)
		}
		streams[i] = s
	}
	for _, s := range streams {
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(e.srv.Status().Nodes); got != n {
		t.Fatalf("nodes = %d", got)
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g := runtime.NumGoroutine()
		nodes := len(e.srv.Status().Nodes)
		subs := subscriptions(e.gatewayGroup(t), resourcev3.ClusterType)
		if g <= before+10 && nodes == 0 && len(subs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing: %d goroutines (%d before), %d nodes, subscriptions %v", g, before, nodes, subs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A delta client that never reads blocks only its own stream: updates and
// other proxies go on, and the server does not queue responses for it.
func TestClientThatNeverReads(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	v := e.sotw(t)
	v.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("victim"), TypeUrl: resourcev3.ClusterType})
	v.ack(v.next())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stuck, err := discoveryv3.NewAggregatedDiscoveryServiceClient(e.conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stuck.Send(&discoveryv3.DeltaDiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType}); err != nil {
		t.Fatal(err)
	}
	// Big clusters, every update different: far more than the windows.
	for i := range 40 {
		services := map[string][]string{}
		for j := range 200 {
			services[fmt.Sprintf("s%d-%s.default.svc.cluster.local", j, strings.Repeat("x", 200))] = []string{fmt.Sprintf("10.0.%d.%d", i, j)}
		}
		services[fmt.Sprintf("v%d.default.svc.cluster.local", i)] = nil
		done := make(chan error, 1)
		go func() { done <- e.srv.Update(mesh(services)) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Update blocked by a client that does not read")
		}
		r := v.next()
		if got := len(r.GetResources()); got != 201 {
			t.Fatalf("victim: clusters = %d", got)
		}
		v.ack(r)
	}
	// A client that closes mid-response.
	cancel()
	time.Sleep(100 * time.Millisecond)
	victimSees(t, e, v, bookinfo, 2)
}

// A client that moves one stream back and forth between subscriptions,
// while another stream holds the one it keeps returning to, must not grow
// that subscription's memoised responses without bound: each return
// computes the added names anew (another slice, so another memo key).
func TestSubscriptionChurnDoesNotGrowTheMemo(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	both := []string{detailsCluster, reviewsCluster}
	e.subscribeEDS(t, both...) // holds the shared subscription
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType, ResourceNames: both[:1]})
	r := c.next()
	for i := range 500 {
		c.ack(r, both...)
		r = c.next()
		if len(r.GetResources()) != 1 {
			t.Fatalf("cycle %d: %d resources", i, len(r.GetResources()))
		}
		c.ack(r, both[i%2:i%2+1]...) // a subset: nothing to send
	}
	g := e.gatewayGroup(t)
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, s := range g.types[resourcev3.EndpointType].subs {
		if len(s.memo) > maxMemo {
			t.Fatalf("subscription of %d names: %d memoised responses", k.n, len(s.memo))
		}
	}
}

// Nodes refused because the proxy groups are all taken must leave nothing
// behind once their streams close: the tracker counted each claimed group
// before it was refused, and only groups that exist are ever dropped.
func TestRefusedGroupsLeaveNothingBehind(t *testing.T) {
	e := start(t, Options{MaxGroups: 1})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	v := e.sotw(t)
	v.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("victim"), TypeUrl: resourcev3.ClusterType})
	v.ack(v.next())
	for i := range 50 {
		c := e.sotw(t)
		c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode(fmt.Sprintf("made-up-%d-%s", i, strings.Repeat("x", 1000))), TypeUrl: resourcev3.ClusterType})
		wantCode(t, c.failure(), codes.ResourceExhausted, "proxy groups")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.srv.tracker.mu.Lock()
		n := len(e.srv.tracker.groups)
		e.srv.tracker.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tracker holds %d groups, want 1 (the victim's)", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := e.srv.tracker.groupStreams(e.srv.Status().Groups[0].Key); got != 1 {
		t.Fatalf("victim group streams = %d", got)
	}
}

// A NACK of the empty answer to a type Rosen does not serve is not
// answered again: that would be a NACK loop at network speed (and a
// warning logged per round trip).
func TestNackOfUnknownTypeIsNotAnswered(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	const made = "type.googleapis.com/made.Up"
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: made})
	r := c.next()
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: made, ResponseNonce: r.GetNonce(), ErrorDetail: &rpcstatus.Status{Message: "no"}})
	c.none(200 * time.Millisecond)
	if st := nodeTypes(e, "router~10.0.0.1~gw-1")[made]; st.Nacks != 1 {
		t.Fatalf("status %+v", st)
	}

	d := e.delta(t)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: made})
	dr := d.next()
	d.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: made, ResponseNonce: dr.GetNonce(), ErrorDetail: &rpcstatus.Status{Message: "no"}})
	select {
	case r := <-d.resp:
		t.Fatalf("delta: answered again: %v", r)
	case <-time.After(200 * time.Millisecond):
	}
}
