package translate

import (
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	ratelimitconfv3 "github.com/envoyproxy/go-control-plane/envoy/config/ratelimit/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// RateLimitFilterName is Envoy's global rate-limit filter.
const RateLimitFilterName = "envoy.filters.http.ratelimit"

// RateLimitFilter calls Rosen's RLS for the domain of the mesh's
// RateLimitPolicies (the builder guarantees there is one), or nil.
func RateLimitFilter(rls []*model.RateLimit) *hcmv3.HttpFilter {
	if len(rls) == 0 {
		return nil
	}
	deny := false
	for _, r := range rls {
		deny = deny || r.FailureModeDeny
	}
	cfg := &ratelimitv3.RateLimit{
		Domain:          rls[0].Domain,
		Timeout:         durationpb.New(100 * time.Millisecond),
		FailureModeDeny: deny,
		RateLimitService: &ratelimitconfv3.RateLimitServiceConfig{
			TransportApiVersion: corev3.ApiVersion_V3,
			GrpcService: &corev3.GrpcService{
				TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: RosenCluster}},
			},
		},
		EnableXRatelimitHeaders: ratelimitv3.RateLimit_DRAFT_VERSION_03,
	}
	return httpFilter(RateLimitFilterName, mustAny(cfg))
}

// RouteRateLimits returns the rate_limits of one route: the descriptors of
// every RateLimitPolicy that targets its VirtualService (and route name).
func RouteRateLimits(m *model.Mesh, vs *model.VirtualService, route *model.HTTPRoute) []*routev3.RateLimit {
	if m.Security == nil {
		return nil
	}
	var out []*routev3.RateLimit
	for _, rl := range m.Security.RateLimits {
		if rl.VirtualService != vs.Namespace+"/"+vs.Name || rl.Route != "" && rl.Route != route.Name {
			continue
		}
		for _, d := range rl.Descriptors {
			r := &routev3.RateLimit{}
			for _, e := range d.Entries {
				r.Actions = append(r.Actions, rateLimitAction(e))
			}
			out = append(out, r)
		}
	}
	return out
}

func rateLimitAction(e model.RateLimitEntry) *routev3.RateLimit_Action {
	switch e.Kind {
	case model.EntryRemoteAddress:
		return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_RemoteAddress_{RemoteAddress: &routev3.RateLimit_Action_RemoteAddress{}}}
	case model.EntryRequestHeader:
		return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_RequestHeaders_{RequestHeaders: &routev3.RateLimit_Action_RequestHeaders{HeaderName: e.Header, DescriptorKey: e.Key}}}
	case model.EntryGenericKey:
		return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_GenericKey_{GenericKey: &routev3.RateLimit_Action_GenericKey{DescriptorKey: e.Key, DescriptorValue: e.Value}}}
	case model.EntryPath:
		return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_RequestHeaders_{RequestHeaders: &routev3.RateLimit_Action_RequestHeaders{HeaderName: ":path", DescriptorKey: e.Key}}}
	case model.EntryMethod:
		return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_RequestHeaders_{RequestHeaders: &routev3.RateLimit_Action_RequestHeaders{HeaderName: ":method", DescriptorKey: e.Key}}}
	}
	// jwtClaim: the claim of the payload jwt_authn wrote to its metadata
	// (envoy.filters.http.jwt_authn → payload → claim).
	return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_Metadata{Metadata: &routev3.RateLimit_Action_MetaData{
		DescriptorKey: e.Key,
		MetadataKey: &metadatav3.MetadataKey{Key: JWTAuthnFilterName, Path: []*metadatav3.MetadataKey_PathSegment{
			{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: JWTPayloadMetadataKey}},
			{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: e.Claim}},
		}},
		Source: routev3.RateLimit_Action_MetaData_DYNAMIC,
	}}}
}
