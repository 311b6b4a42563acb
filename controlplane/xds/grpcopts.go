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
	// writeBufferSize is the most one connection writes per syscall.
	writeBufferSize = 256 << 10
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
		// A SotW push is the whole CDS and route table (hundreds of KB) to
		// every stream: write it in 256 KB syscalls, not 32 KB ones. The
		// buffer is shared (taken from a pool while writing, returned
		// when flushed), so an idle connection holds none of it.
		grpc.WriteBufferSize(writeBufferSize),
		grpc.SharedWriteBuffer(true),
		// Send a response body marshalled once to every stream without
		// copying it per stream (see wire); other messages as usual.
		grpc.ForceServerCodecV2(newCodec()),
	}
}
