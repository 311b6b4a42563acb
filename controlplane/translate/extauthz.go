package translate

import (
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ExtAuthzFilterName is Envoy's external authorization filter.
const ExtAuthzFilterName = "envoy.filters.http.ext_authz"

// ExtAuthzMaxBody is the most request body sent to Rosen's ext_authz; a
// longer body is sent partially and marked x-envoy-auth-partial-body.
const ExtAuthzMaxBody = 8192

// ExtAuthzFilter calls Rosen's ext_authz (CUSTOM provider "rosen") over
// gRPC, v3, with the request body (up to ExtAuthzMaxBody) and fail-closed:
// failure_mode_allow is false, so an unreachable Rosen denies.
func ExtAuthzFilter() *hcmv3.HttpFilter {
	cfg := &extauthzv3.ExtAuthz{
		TransportApiVersion: corev3.ApiVersion_V3,
		Services: &extauthzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: RosenCluster}},
			Timeout:         durationpb.New(200 * time.Millisecond),
		}},
		FailureModeAllow: false,
		WithRequestBody: &extauthzv3.BufferSettings{
			MaxRequestBytes: ExtAuthzMaxBody, AllowPartialMessage: true, PackAsBytes: false,
		},
		StatusOnError:             nil,
		MetadataContextNamespaces: []string{JWTAuthnFilterName},
		ClearRouteCache:           true,
		EncodeRawHeaders:          false,
	}
	return httpFilter(ExtAuthzFilterName, mustAny(cfg))
}
