package xds

import (
	"context"
	"sort"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// unsupportedVersion is the version of the empty answer to a type Rosen does
// not serve.
const unsupportedVersion = "unsupported"

// router is the cache.Cache behind go-control-plane's servers: it sends each
// request to the LinearCache of the node's group and the request's type.
type router struct{ s *Server }

var _ cachev3.Cache = router{}

// CreateWatch implements cache.ConfigWatcher for state-of-the-world streams.
func (r router) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, out chan cachev3.Response) (func(), error) {
	if n := len(sub.SubscribedResources()); n > r.s.opts.MaxResourceNames {
		return nil, status.Errorf(codes.InvalidArgument, "xds: %d resource names subscribed (limit %d)", n, r.s.opts.MaxResourceNames)
	}
	g, err := r.s.groupFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	lc, ok := g.caches[req.GetTypeUrl()]
	if !ok {
		// Answer an unknown type once with no resources, so that the client
		// learns there is nothing, and then stay silent.
		if req.GetVersionInfo() == "" {
			out <- &cachev3.PassthroughResponse{
				Request:           req,
				DiscoveryResponse: &discoveryv3.DiscoveryResponse{TypeUrl: req.GetTypeUrl(), VersionInfo: unsupportedVersion},
			}
		}
		return func() {}, nil
	}
	if req.GetErrorDetail() != nil {
		// A NACK. The subscription already records the rejected resources
		// as sent, so the cache answers only when they change. But a client
		// that never accepted anything NACKs with an empty version, which
		// LinearCache takes as "send me everything" — and it would re-send
		// the rejected listeners or clusters at once, in a loop. Give it a
		// version of this cache so it waits for a change.
		c := proto.Clone(req).(*discoveryv3.DiscoveryRequest)
		c.VersionInfo = g.prefix + "nack"
		req = c
	}
	return lc.CreateWatch(req, sub, out)
}

// CreateDeltaWatch implements cache.ConfigWatcher for delta streams.
func (r router) CreateDeltaWatch(req *cachev3.DeltaRequest, sub cachev3.Subscription, out chan cachev3.DeltaResponse) (func(), error) {
	if n := len(sub.SubscribedResources()); n > r.s.opts.MaxResourceNames {
		return nil, status.Errorf(codes.InvalidArgument, "xds: %d resource names subscribed (limit %d)", n, r.s.opts.MaxResourceNames)
	}
	g, err := r.s.groupFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	lc, ok := g.caches[req.GetTypeUrl()]
	if !ok {
		if req.GetResponseNonce() == "" {
			out <- &cachev3.DeltaPassthroughResponse{
				DeltaRequest:           req,
				DeltaDiscoveryResponse: &discoveryv3.DeltaDiscoveryResponse{TypeUrl: req.GetTypeUrl(), SystemVersionInfo: unsupportedVersion},
			}
		}
		return func() {}, nil
	}
	return lc.CreateDeltaWatch(req, sub, out)
}

// Fetch implements cache.ConfigFetcher (the unary Fetch* RPCs), which
// LinearCache does not.
func (r router) Fetch(_ context.Context, req *cachev3.Request) (cachev3.Response, error) {
	g, err := r.s.groupFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	if _, ok := g.caches[req.GetTypeUrl()]; !ok {
		return nil, status.Errorf(codes.InvalidArgument, "xds: type %q is not served", req.GetTypeUrl())
	}
	resources, version := g.snapshot(req.GetTypeUrl())
	if req.GetVersionInfo() == version {
		return nil, &types.SkipFetchError{}
	}
	names := req.GetResourceNames()
	if len(names) == 0 {
		for name := range resources {
			names = append(names, name)
		}
		sort.Strings(names)
	}
	resp := &discoveryv3.DiscoveryResponse{VersionInfo: version, TypeUrl: req.GetTypeUrl()}
	for _, name := range names {
		res, ok := resources[name]
		if !ok {
			continue
		}
		a, err := anypb.New(res)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "xds: marshal %s: %v", name, err)
		}
		resp.Resources = append(resp.Resources, a)
	}
	return &cachev3.PassthroughResponse{Request: req, DiscoveryResponse: resp}, nil
}
