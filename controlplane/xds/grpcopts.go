package xds

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Limits of the xDS gRPC port.
const (
	// MaxRecvMsgSize bounds one request: 10,000 resource names fit many
	// times over, a hostile multi-gigabyte message does not.
	MaxRecvMsgSize = 4 << 20
	// MaxConcurrentStreams bounds the streams of one client connection.
	MaxConcurrentStreams = 10000
)

func grpcServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.MaxConcurrentStreams(MaxConcurrentStreams),
		// Clients may ping every 10 s, even without a stream (Envoy's and
		// grpc-go's xDS keepalives are above this); more often is abuse
		// and closes the connection.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// Ping idle clients to find dead proxies within a minute.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 20 * time.Second}),
		// Send a response body marshalled once to every stream without
		// copying it per stream (see wire); other messages as usual.
		grpc.ForceServerCodecV2(newCodec()),
	}
}
