package xds

import (
	"fmt"
	"math"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/rosenmesh/rosen/controlplane/translate"
)

// clustersLikeRosens returns n EDS clusters shaped as translate builds
// them (circuit breakers at Istio's defaults), as new objects each call.
func clustersLikeRosens(n int) map[string]types.Resource {
	out := make(map[string]types.Resource, n)
	max := wrapperspb.UInt32(math.MaxUint32)
	for i := range n {
		name := fmt.Sprintf("outbound|9080|v%d|svc-%d.default.svc.cluster.local", i%3, i/3)
		out[name] = &clusterv3.Cluster{
			Name:                 name,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
			ConnectTimeout:       durationpb.New(10 * time.Second),
			LbPolicy:             clusterv3.Cluster_LEAST_REQUEST,
			CircuitBreakers: &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
				MaxConnections: max, MaxPendingRequests: max, MaxRequests: max, MaxRetries: max, TrackRemaining: true,
			}}},
			EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{ServiceName: name, EdsConfig: &corev3.ConfigSource{
				ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
				ResourceApiVersion:    corev3.ApiVersion_V3,
			}},
		}
	}
	return out
}

// BenchmarkPrepareUnchanged3000Clusters: a new mesh whose 3,000 clusters
// are equal to the published ones but new objects (every change of any
// service translates them again): what prepare spends finding that
// nothing changed. proto.Equal is the comparison prepare used before.
func BenchmarkPrepareUnchanged3000Clusters(b *testing.B) {
	g := newGroup("g", translate.Proxy{Kind: translate.Gateway}, "p.", time.Time{})
	if err := g.publish(map[string]map[string]types.Resource{resourcev3.ClusterType: clustersLikeRosens(3000)}); err != nil {
		b.Fatal(err)
	}
	next := map[string]map[string]types.Resource{resourcev3.ClusterType: clustersLikeRosens(3000)}
	b.Run("bytes", func(b *testing.B) {
		for b.Loop() {
			p, err := g.prepare(next, marshalMemo{}, resourcev3.ClusterType)
			if err != nil || len(p) != 0 {
				b.Fatal(err, p)
			}
		}
	})
	b.Run("proto.Equal", func(b *testing.B) {
		tc := g.types[resourcev3.ClusterType]
		for b.Loop() {
			for name, res := range next[resourcev3.ClusterType] {
				if !proto.Equal(tc.entries[name].res, res) {
					b.Fatal(name)
				}
			}
		}
	})
}
