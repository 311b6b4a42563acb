package xds

import (
	"context"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type (
	sotwServer  = grpc.BidiStreamingServer[discoveryv3.DiscoveryRequest, discoveryv3.DiscoveryResponse]
	deltaServer = grpc.BidiStreamingServer[discoveryv3.DeltaDiscoveryRequest, discoveryv3.DeltaDiscoveryResponse]
)

// Register adds ADS (state of the world and delta) and the per-type
// discovery services (LDS, RDS, CDS, EDS, SDS) to g.
func (s *Server) Register(g *grpc.Server) {
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, adsService{s: s})
	listenerservice.RegisterListenerDiscoveryServiceServer(g, ldsService{s: s})
	routeservice.RegisterRouteDiscoveryServiceServer(g, rdsService{s: s})
	clusterservice.RegisterClusterDiscoveryServiceServer(g, cdsService{s: s})
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, edsService{s: s})
	secretservice.RegisterSecretDiscoveryServiceServer(g, sdsService{s: s})
}

type adsService struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	s *Server
}

func (a adsService) StreamAggregatedResources(ss sotwServer) error { return a.s.serveSotw(ss, "") }
func (a adsService) DeltaAggregatedResources(ds deltaServer) error { return a.s.serveDelta(ds, "") }

type ldsService struct {
	listenerservice.UnimplementedListenerDiscoveryServiceServer
	s *Server
}

func (l ldsService) StreamListeners(ss sotwServer) error {
	return l.s.serveSotw(ss, resourcev3.ListenerType)
}
func (l ldsService) DeltaListeners(ds deltaServer) error {
	return l.s.serveDelta(ds, resourcev3.ListenerType)
}
func (l ldsService) FetchListeners(ctx context.Context, r *discoveryv3.DiscoveryRequest) (*discoveryv3.DiscoveryResponse, error) {
	return l.s.fetch(ctx, r, resourcev3.ListenerType)
}

type rdsService struct {
	routeservice.UnimplementedRouteDiscoveryServiceServer
	s *Server
}

func (r rdsService) StreamRoutes(ss sotwServer) error { return r.s.serveSotw(ss, resourcev3.RouteType) }
func (r rdsService) DeltaRoutes(ds deltaServer) error {
	return r.s.serveDelta(ds, resourcev3.RouteType)
}
func (r rdsService) FetchRoutes(ctx context.Context, req *discoveryv3.DiscoveryRequest) (*discoveryv3.DiscoveryResponse, error) {
	return r.s.fetch(ctx, req, resourcev3.RouteType)
}

type cdsService struct {
	clusterservice.UnimplementedClusterDiscoveryServiceServer
	s *Server
}

func (c cdsService) StreamClusters(ss sotwServer) error {
	return c.s.serveSotw(ss, resourcev3.ClusterType)
}
func (c cdsService) DeltaClusters(ds deltaServer) error {
	return c.s.serveDelta(ds, resourcev3.ClusterType)
}
func (c cdsService) FetchClusters(ctx context.Context, r *discoveryv3.DiscoveryRequest) (*discoveryv3.DiscoveryResponse, error) {
	return c.s.fetch(ctx, r, resourcev3.ClusterType)
}

type edsService struct {
	endpointservice.UnimplementedEndpointDiscoveryServiceServer
	s *Server
}

func (e edsService) StreamEndpoints(ss sotwServer) error {
	return e.s.serveSotw(ss, resourcev3.EndpointType)
}
func (e edsService) DeltaEndpoints(ds deltaServer) error {
	return e.s.serveDelta(ds, resourcev3.EndpointType)
}
func (e edsService) FetchEndpoints(ctx context.Context, r *discoveryv3.DiscoveryRequest) (*discoveryv3.DiscoveryResponse, error) {
	return e.s.fetch(ctx, r, resourcev3.EndpointType)
}

type sdsService struct {
	secretservice.UnimplementedSecretDiscoveryServiceServer
	s *Server
}

func (d sdsService) StreamSecrets(ss sotwServer) error {
	return d.s.serveSotw(ss, resourcev3.SecretType)
}
func (d sdsService) DeltaSecrets(ds deltaServer) error {
	return d.s.serveDelta(ds, resourcev3.SecretType)
}
func (d sdsService) FetchSecrets(ctx context.Context, r *discoveryv3.DiscoveryRequest) (*discoveryv3.DiscoveryResponse, error) {
	return d.s.fetch(ctx, r, resourcev3.SecretType)
}

// fetch answers the unary Fetch* RPCs from the group's current resources
// (the same marshalled bytes the streams get).
func (s *Server) fetch(_ context.Context, req *discoveryv3.DiscoveryRequest, typeURL string) (*discoveryv3.DiscoveryResponse, error) {
	if req == nil {
		return nil, status.Error(codes.InvalidArgument, "xds: empty request")
	}
	if err := s.tracker.checkFetch(req); err != nil {
		return nil, err
	}
	g, err := s.groupFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.published {
		return nil, status.Errorf(codes.Unavailable, "xds: no good configuration for this proxy yet (see /debug/config-errors)")
	}
	tc := g.types[typeURL]
	version := tc.versionString(tc.version)
	if req.GetVersionInfo() == version {
		return nil, &types.SkipFetchError{}
	}
	resp := &discoveryv3.DiscoveryResponse{VersionInfo: version, TypeUrl: typeURL}
	if len(req.GetResourceNames()) == 0 {
		resp.Resources = anys(tc.allEntries())
		return resp, nil
	}
	// Each resource at most once, however often it is named: a request that
	// repeats one large route config 10,000 times must not build a
	// response 10,000 times its size.
	seen := make(map[string]bool, len(req.GetResourceNames()))
	for _, name := range req.GetResourceNames() {
		if seen[name] {
			continue
		}
		seen[name] = true
		if e := tc.entries[name]; e != nil {
			resp.Resources = append(resp.Resources, e.any)
		}
	}
	return resp, nil
}
