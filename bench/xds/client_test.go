package main

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
)

// fakeMesh builds the resources an Envoy gateway would get for n services:
// one listener whose HCM uses RDS, one route config, two EDS clusters and
// two endpoint sets per service. v1Addr overrides svc-0's v1 address.
type fakeMesh struct {
	n      int
	v1Addr string
}

func (m fakeMesh) resources(t *testing.T) map[int][]types.Resource {
	t.Helper()
	router, err := anypb.New(&routerv3.Router{})
	if err != nil {
		t.Fatal(err)
	}
	hcm, err := anypb.New(&hcmv3.HttpConnectionManager{
		StatPrefix: "http",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: "http.8080",
			ConfigSource:    &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]types.Resource{
		tLDS: {&listenerv3.Listener{Name: "0.0.0.0_8080", FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{Name: "hcm", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm}}},
		}}}},
	}
	rc := &routev3.RouteConfiguration{Name: "http.8080"}
	for i := 0; i < m.n; i++ {
		name := serviceName(i)
		rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{Name: name, Domains: []string{name + ".bench.example.com"}})
		for _, subset := range []string{"v1", "v2"} {
			cn := clusterName(name, subset)
			out[tCDS] = append(out[tCDS], &clusterv3.Cluster{
				Name:                 cn,
				ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
				EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{
					ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
				}},
			})
			addr := endpointAddr(i, subset)
			if i == 0 && subset == "v1" && m.v1Addr != "" {
				addr = m.v1Addr
			}
			out[tEDS] = append(out[tEDS], &endpointv3.ClusterLoadAssignment{
				ClusterName: cn,
				Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
					HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: &corev3.Address{
						Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
							Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 9080},
						}},
					}}},
				}}}},
			})
		}
	}
	out[tRDS] = []types.Resource{rc}
	return out
}

// snapshot gives each type its own version so that an endpoint-only change
// re-sends EDS only, as a control plane should.
func snapshot(res map[int][]types.Resource, versions [nTypes]string) *cachev3.Snapshot {
	s := &cachev3.Snapshot{}
	s.Resources[types.Listener] = cachev3.NewResources(versions[tLDS], res[tLDS])
	s.Resources[types.Route] = cachev3.NewResources(versions[tRDS], res[tRDS])
	s.Resources[types.Cluster] = cachev3.NewResources(versions[tCDS], res[tCDS])
	s.Resources[types.Endpoint] = cachev3.NewResources(versions[tEDS], res[tEDS])
	return s
}

type oneGroup struct{}

func (oneGroup) ID(*corev3.Node) string { return "all" }

func startServer(t *testing.T, c cachev3.SnapshotCache) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := serverv3.NewServer(ctx, c, nil)
	gs := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(func() { gs.Stop(); cancel() })
	return ln.Addr().String()
}

func waitOrFail(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestFleetAgainstGoControlPlane(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprintf("delta=%v", delta), func(t *testing.T) {
			const proxies, services = 23, 5
			c := cachev3.NewSnapshotCache(false, oneGroup{}, nil)
			versions := [nTypes]string{"1", "1", "1", "1"}
			if err := c.SetSnapshot(context.Background(), "all", snapshot(fakeMesh{n: services}.resources(t), versions)); err != nil {
				t.Fatal(err)
			}
			addr := startServer(t, c)
			ctx, cancel := context.WithCancel(context.Background())
			f := newFleet(fleetConfig{addr: addr, kind: kindGateway, delta: delta, proxies: proxies, perConn: 7})
			if err := f.connect(ctx); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); f.close() }()
			waitOrFail(t, f.allSynced, "initial sync")
			if n, err := f.errors(); n > 0 {
				t.Fatalf("%d streams failed: %v", n, err)
			}
			s := f.streams[0]
			if got := len(s.subs[1].names); got != 2*services {
				t.Fatalf("EDS subscription has %d names, want %d", got, 2*services)
			}
			if got := s.subs[0].names; len(got) != 1 || got[0] != "http.8080" {
				t.Fatalf("RDS subscription %v, want [http.8080]", got)
			}
			// Every stream shares one interned state.
			if f.streams[proxies-1].sets[tEDS].Load() != s.sets[tEDS].Load() {
				t.Fatalf("streams do not share their EDS state")
			}

			// A new service: every proxy must ACK a CDS response that holds it.
			newCluster := clusterName(serviceName(services), "v1")
			p := newProbe(proxies, typeURLs[tCDS], newCluster, "")
			p.start = time.Now()
			f.probes.Store(&probes{p})
			versions = [nTypes]string{"2", "2", "2", "2"}
			if err := c.SetSnapshot(context.Background(), "all", snapshot(fakeMesh{n: services + 1}.resources(t), versions)); err != nil {
				t.Fatal(err)
			}
			waitOrFail(t, p.all, "the new cluster")
			if lat, missing := p.latencies(); missing != 0 || len(lat) != proxies {
				t.Fatalf("latencies %d, missing %d", len(lat), missing)
			}
			waitOrFail(t, f.allSyncedAgain(ctx, services+1), "EDS for the new clusters")

			// An endpoint change: only EDS may be pushed.
			before := f.counts()
			p = newProbe(proxies, typeURLs[tEDS], clusterName(serviceName(0), "v1"), "127.3.0.1")
			p.start = time.Now()
			f.probes.Store(&probes{p})
			versions[tEDS] = "3"
			if err := c.SetSnapshot(context.Background(), "all", snapshot(fakeMesh{n: services + 1, v1Addr: "127.3.0.1"}.resources(t), versions)); err != nil {
				t.Fatal(err)
			}
			waitOrFail(t, p.all, "the endpoint change")
			after := f.counts()
			for _, ti := range []int{tLDS, tRDS, tCDS} {
				if after[ti] != before[ti] {
					t.Errorf("%s responses during the endpoint change: %d", typeNames[ti], after[ti]-before[ti])
				}
			}
			if after[tEDS]-before[tEDS] < proxies {
				t.Errorf("EDS responses during the endpoint change: %d, want ≥ %d", after[tEDS]-before[tEDS], proxies)
			}
			// A probe for an address nobody has never completes.
			p = newProbe(proxies, typeURLs[tEDS], clusterName(serviceName(0), "v1"), "127.9.9.9")
			f.probes.Store(&probes{p})
			for i, st := range f.streams {
				if p.matches(st.sets[tEDS].Load()) {
					t.Fatalf("stream %d matches an address it never received", i)
				}
			}
		})
	}
}

// allSyncedAgain closes when every stream holds EDS for n services.
func (f *fleet) allSyncedAgain(ctx context.Context, n int) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for ctx.Err() == nil {
			ok := true
			for _, s := range f.streams {
				if len(s.sets[tEDS].Load().items) < 2*n {
					ok = false
				}
			}
			if ok {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return ch
}

func TestNameOf(t *testing.T) {
	res := fakeMesh{n: 1}.resources(t)
	for ti, list := range res {
		for _, r := range list {
			b, err := cachev3.MarshalResource(r)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := nameOf(b), cachev3.GetResourceName(r); got != want {
				t.Errorf("%s: nameOf = %q, want %q", typeNames[ti], got, want)
			}
		}
	}
}

func TestDiff(t *testing.T) {
	in := newInterner()
	in.mu.Lock()
	a := in.internNames([]string{"c", "a", "b"})
	b := in.internNames([]string{"d", "b", "c", "c"})
	again := in.internNames([]string{"b", "a", "c"})
	in.mu.Unlock()
	if a != again {
		t.Fatalf("equal lists are not interned once")
	}
	added, removed := diff(a, b)
	if fmt.Sprint(added) != "[d]" || fmt.Sprint(removed) != "[a]" {
		t.Fatalf("diff = +%v -%v", added, removed)
	}
}
