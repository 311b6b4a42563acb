package xds

import (
	"context"
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
)

// fakeGen is a small generator: one EDS cluster per service port, a
// listener per proxy kind routing every service, and a gate that rejects
// services whose host starts with "invalid".
type fakeGen struct {
	translations atomic.Int64
	endpoints    atomic.Int64
}

func (f *fakeGen) Translate(m *model.Mesh, p translate.Proxy) (*translate.Resources, error) {
	f.translations.Add(1)
	r := &translate.Resources{Origins: map[string]model.Source{}}
	var names []string
	vh := &routev3.VirtualHost{Name: "all", Domains: []string{"*"}}
	for _, s := range m.Services {
		if strings.HasPrefix(s.Host, "panic") {
			panic("translator bug")
		}
		// A "conflict" service is bad only for gateways labelled app=poison:
		// a failure that depends on what one group's proxies claim.
		if strings.HasPrefix(s.Host, "conflict") && p.Labels["app"] == "poison" {
			return nil, model.Errorf(s.Source, "spec.hosts[0]", "conflicts for this label set")
		}
		for _, port := range s.Ports {
			name := translate.ClusterName(s.Host, port.Number, "")
			names = append(names, name)
			r.Clusters = append(r.Clusters, &clusterv3.Cluster{
				Name:                 name,
				ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
				EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{ServiceName: name, EdsConfig: &corev3.ConfigSource{
					ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
				}},
			})
			vh.Routes = append(vh.Routes, &routev3.Route{
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/" + s.Host}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name}}},
			})
			r.Origins[translate.OriginKey(translate.KindCluster, name)] = s.Source
		}
	}
	r.Endpoints = f.eds(m, names)
	routeName := "http." + string(p.Kind)
	r.Routes = []*routev3.RouteConfiguration{{Name: routeName, VirtualHosts: []*routev3.VirtualHost{vh}}}
	hcm, err := anypb.New(&hcmv3.HttpConnectionManager{
		StatPrefix: "http",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: routeName, ConfigSource: &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		}}},
	})
	if err != nil {
		return nil, err
	}
	r.Listeners = []*listenerv3.Listener{{
		Name:        "listener-" + string(p.Kind) + "-" + p.Namespace + "-" + p.Labels["app"],
		ApiListener: &listenerv3.ApiListener{ApiListener: hcm},
	}}
	return r, nil
}

func (f *fakeGen) Endpoints(m *model.Mesh, clusters []string) []*endpointv3.ClusterLoadAssignment {
	f.endpoints.Add(1)
	return f.eds(m, clusters)
}

func (f *fakeGen) eds(m *model.Mesh, clusters []string) []*endpointv3.ClusterLoadAssignment {
	want := map[string]bool{}
	for _, c := range clusters {
		want[c] = true
	}
	var out []*endpointv3.ClusterLoadAssignment
	for _, s := range m.Services {
		for _, port := range s.Ports {
			name := translate.ClusterName(s.Host, port.Number, "")
			if !want[name] {
				continue
			}
			cla := &endpointv3.ClusterLoadAssignment{ClusterName: name}
			lle := &endpointv3.LocalityLbEndpoints{Locality: &corev3.Locality{Region: "r"}}
			for _, ep := range s.Endpoints {
				lle.LbEndpoints = append(lle.LbEndpoints, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
					Endpoint: &endpointv3.Endpoint{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
						Address: ep.Address, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port.Number},
					}}}},
				}})
			}
			cla.Endpoints = []*endpointv3.LocalityLbEndpoints{lle}
			out = append(out, cla)
		}
	}
	return out
}

func (f *fakeGen) Validate(r *translate.Resources) error {
	var errs model.Errors
	for _, c := range r.Clusters {
		if host, _, _, ok := translate.ParseClusterName(c.GetName()); ok && strings.HasPrefix(host, "invalid") {
			errs = append(errs, model.Errorf(r.Origins[translate.OriginKey(translate.KindCluster, c.GetName())], "spec.hosts[0]", "host %q is not allowed", host))
		}
	}
	for _, cla := range r.Endpoints {
		for _, lle := range cla.GetEndpoints() {
			for _, e := range lle.GetLbEndpoints() {
				if e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress() == "0.0.0.0" {
					errs = append(errs, model.Errorf(model.Source{Kind: "WorkloadEntry"}, "spec.address", "unspecified address"))
				}
			}
		}
	}
	return errs.Err()
}

// mesh builds a mesh of services host → endpoint addresses, port 9080.
func mesh(services map[string][]string) *model.Mesh {
	m := &model.Mesh{}
	for host, addrs := range services {
		s := &model.Service{Host: host, Namespace: "default", Resolution: model.ResolutionStatic,
			Ports:  []model.ServicePort{{Number: 9080, Name: "http", Protocol: "HTTP"}},
			Source: model.Source{File: "svc.yaml", Kind: "Service", Namespace: "default", Name: host}}
		for _, a := range addrs {
			s.Endpoints = append(s.Endpoints, model.Endpoint{Address: a, Healthy: true, Weight: 1})
		}
		m.Services = append(m.Services, s)
	}
	sortServices(m)
	return m
}

func sortServices(m *model.Mesh) {
	for i := range m.Services {
		for j := i + 1; j < len(m.Services); j++ {
			if m.Services[j].Host < m.Services[i].Host {
				m.Services[i], m.Services[j] = m.Services[j], m.Services[i]
			}
		}
	}
}

type env struct {
	srv  *Server
	gen  *fakeGen
	reg  *prometheus.Registry
	addr string
	conn *grpc.ClientConn
}

func start(t *testing.T, opts Options) *env {
	t.Helper()
	e := &env{gen: &fakeGen{}, reg: prometheus.NewRegistry()}
	opts.Registry = e.reg
	e.srv = New(zaptest.NewLogger(t), e.gen, opts)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(ServerOptions()...)
	e.srv.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(func() { e.srv.Close(); g.Stop() })
	e.addr = lis.Addr().String()
	e.conn, err = grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.conn.Close() })
	return e
}

func gatewayNode(app string) *corev3.Node {
	labels, _ := structpb.NewStruct(map[string]any{"app": app, "istio": "ingressgateway"})
	return &corev3.Node{
		Id:       "router~10.0.0.1~" + app + "-1.istio-system~istio-system.svc.cluster.local",
		Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{MetaLabels: structpb.NewStructValue(labels)}},
	}
}

func proxylessNode(id string) *corev3.Node {
	return &corev3.Node{Id: id, Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{MetaGenerator: structpb.NewStringValue(GeneratorGRPC)}}}
}

// sotw is a raw state-of-the-world ADS stream.
type sotw struct {
	t      *testing.T
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	resp   chan *discoveryv3.DiscoveryResponse
	err    chan error
}

func (e *env) sotw(t *testing.T) *sotw {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(e.conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &sotw{t: t, stream: st, resp: make(chan *discoveryv3.DiscoveryResponse, 1000), err: make(chan error, 1)}
	go func() {
		for {
			r, err := st.Recv()
			if err != nil {
				c.err <- err
				return
			}
			c.resp <- r
		}
	}()
	return c
}

func (c *sotw) send(req *discoveryv3.DiscoveryRequest) {
	c.t.Helper()
	if err := c.stream.Send(req); err != nil {
		c.t.Fatal(err)
	}
}

// next waits for a response (or fails the test).
func (c *sotw) next() *discoveryv3.DiscoveryResponse {
	c.t.Helper()
	select {
	case r := <-c.resp:
		return r
	case err := <-c.err:
		c.t.Fatalf("stream ended: %v", err)
	case <-time.After(5 * time.Second):
		c.t.Fatal("no response within 5s")
	}
	return nil
}

// none asserts that no response arrives within d.
func (c *sotw) none(d time.Duration) {
	c.t.Helper()
	select {
	case r := <-c.resp:
		c.t.Fatalf("unexpected response: type %s version %s with %d resources", r.GetTypeUrl(), r.GetVersionInfo(), len(r.GetResources()))
	case <-time.After(d):
	}
}

// failure waits for the stream to end with an error.
func (c *sotw) failure() error {
	c.t.Helper()
	select {
	case err := <-c.err:
		return err
	case r := <-c.resp:
		c.t.Fatalf("wanted the stream to fail, got a response of type %s", r.GetTypeUrl())
	case <-time.After(5 * time.Second):
		c.t.Fatal("stream did not fail within 5s")
	}
	return nil
}

// ack acknowledges r, keeping the same subscription.
func (c *sotw) ack(r *discoveryv3.DiscoveryResponse, names ...string) {
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: r.GetTypeUrl(), VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce(), ResourceNames: names})
}

func resourceNames(t *testing.T, r *discoveryv3.DiscoveryResponse) []string {
	t.Helper()
	var out []string
	for _, a := range r.GetResources() {
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, nameOf(m))
	}
	return sortedStrings(out)
}

func nameOf(m proto.Message) string { return cachev3.GetResourceName(m) }

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}

// value reads a counter or gauge.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// deltaStream is a raw delta ADS stream.
type deltaStream struct {
	t      *testing.T
	stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	resp   chan *discoveryv3.DeltaDiscoveryResponse
	err    chan error
}

func (e *env) delta(t *testing.T) *deltaStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(e.conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := &deltaStream{t: t, stream: st, resp: make(chan *discoveryv3.DeltaDiscoveryResponse, 1000), err: make(chan error, 1)}
	go func() {
		for {
			r, err := st.Recv()
			if err != nil {
				d.err <- err
				return
			}
			d.resp <- r
		}
	}()
	return d
}

func (d *deltaStream) send(req *discoveryv3.DeltaDiscoveryRequest) {
	d.t.Helper()
	if err := d.stream.Send(req); err != nil {
		d.t.Fatal(err)
	}
}

func (d *deltaStream) next() *discoveryv3.DeltaDiscoveryResponse {
	d.t.Helper()
	select {
	case r := <-d.resp:
		return r
	case err := <-d.err:
		d.t.Fatalf("stream ended: %v", err)
	case <-time.After(5 * time.Second):
		d.t.Fatal("no response within 5s")
	}
	return nil
}

func (d *deltaStream) failure() error {
	d.t.Helper()
	for {
		select {
		case err := <-d.err:
			return err
		case <-d.resp:
		case <-time.After(5 * time.Second):
			d.t.Fatal("stream did not fail within 5s")
			return nil
		}
	}
}
