package translate

import (
	"math"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// DefaultConnectTimeout is Istio's connect timeout when none is configured.
const DefaultConnectTimeout = 10 * time.Second

// HTTPProtocolOptionsName is the typed_extension_protocol_options key.
const HTTPProtocolOptionsName = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// addClusters emits every service port × (no subset + each subset), and the
// load assignments of the EDS ones. Proxyless clients skip NONE-resolution
// services (grpc-go has no ORIGINAL_DST).
func addClusters(m *model.Mesh, kind ProxyKind, r *Resources, sh *Shared) {
	for _, s := range m.Services {
		if kind == Proxyless && s.Resolution == model.ResolutionNone {
			continue
		}
		src := s.Source
		if s.RuleSource != nil {
			src = *s.RuleSource
		}
		for _, port := range s.Ports {
			subsets := append([]string{""}, subsetNames(s)...)
			for _, sub := range subsets {
				c := sh.cluster(s, port, sub, kind)
				r.Clusters = append(r.Clusters, c)
				r.origin(KindCluster, c.Name, src)
				if c.GetType() == clusterv3.Cluster_EDS {
					r.Endpoints = append(r.Endpoints, sh.loadAssignment(s, port, sub))
					r.origin(KindEndpoint, c.Name, s.Source)
				}
			}
		}
	}
}

func subsetNames(s *model.Service) []string {
	out := make([]string, 0, len(s.Subsets))
	for _, sub := range s.Subsets {
		out = append(out, sub.Name)
	}
	return out
}

// Cluster builds the outbound cluster of one service port and subset.
func Cluster(s *model.Service, port model.ServicePort, subset string, kind ProxyKind) *clusterv3.Cluster {
	name := ClusterName(s.Host, port.Number, subset)
	p := EffectivePolicy(s, port.Number, subset)
	c := &clusterv3.Cluster{
		Name:           name,
		ConnectTimeout: durationpb.New(DefaultConnectTimeout),
		LbPolicy:       clusterv3.Cluster_LEAST_REQUEST,
	}
	if t := p.GetConnectionPool().GetTcp().GetConnectTimeout(); t != nil {
		c.ConnectTimeout = durationpb.New(t.AsDuration())
	}
	switch s.Resolution {
	case model.ResolutionDNS:
		if kind == Proxyless {
			c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_LOGICAL_DNS}
			c.LoadAssignment = logicalDNSAssignment(s, port, subset)
		} else {
			c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
			c.LoadAssignment = dnsAssignment(s, port, subset)
		}
	case model.ResolutionNone:
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST}
	default:
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
		c.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: name}
	}
	applyLoadBalancer(c, p.GetLoadBalancer(), kind)
	c.CircuitBreakers = CircuitBreakers(p.GetConnectionPool())
	if od := OutlierDetection(p.GetOutlierDetection()); od != nil {
		c.OutlierDetection = od
		c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{
			HealthyPanicThreshold: &typev3.Percent{Value: float64(p.GetOutlierDetection().GetMinHealthPercent())},
		}
	}
	if kind != Proxyless {
		if po := protocolOptions(port, p.GetConnectionPool().GetHttp()); po != nil {
			c.TypedExtensionProtocolOptions = map[string]*anypb.Any{HTTPProtocolOptionsName: mustAny(po)}
		}
	}
	return c
}

func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

// applyLoadBalancer maps Istio's load balancer. Envoy proxies default to
// LEAST_REQUEST (Istio's default); proxyless gRPC defaults to ROUND_ROBIN
// and gets only the policies grpc-go accepts.
func applyLoadBalancer(c *clusterv3.Cluster, lb *networking.LoadBalancerSettings, kind ProxyKind) {
	if kind == Proxyless {
		c.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
	}
	if ch := lb.GetConsistentHash(); ch != nil {
		if mg := ch.GetMaglev(); mg != nil && kind != Proxyless {
			c.LbPolicy = clusterv3.Cluster_MAGLEV
			if mg.GetTableSize() > 0 {
				c.LbConfig = &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{
					TableSize: wrapperspb.UInt64(mg.GetTableSize())}}
			}
			return
		}
		c.LbPolicy = clusterv3.Cluster_RING_HASH
		size := ch.GetRingHash().GetMinimumRingSize()
		if size == 0 {
			size = ch.GetMinimumRingSize()
		}
		if size > 0 {
			c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{
				MinimumRingSize: wrapperspb.UInt64(size)}}
		}
		return
	}
	switch lb.GetSimple() {
	case networking.LoadBalancerSettings_ROUND_ROBIN:
		c.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
	case networking.LoadBalancerSettings_LEAST_REQUEST, networking.LoadBalancerSettings_LEAST_CONN:
		c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	case networking.LoadBalancerSettings_RANDOM:
		if kind != Proxyless {
			c.LbPolicy = clusterv3.Cluster_RANDOM
		}
	case networking.LoadBalancerSettings_PASSTHROUGH:
		if kind != Proxyless {
			c.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
			c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST}
			c.EdsClusterConfig, c.LoadAssignment = nil, nil
		}
	}
	if c.GetType() == clusterv3.Cluster_ORIGINAL_DST {
		c.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
	}
}

// CircuitBreakers maps connectionPool to default-priority thresholds;
// unset limits are the maximum, as Istio sets them.
func CircuitBreakers(cp *networking.ConnectionPoolSettings) *clusterv3.CircuitBreakers {
	t := &clusterv3.CircuitBreakers_Thresholds{
		MaxConnections:     wrapperspb.UInt32(math.MaxUint32),
		MaxPendingRequests: wrapperspb.UInt32(math.MaxUint32),
		MaxRequests:        wrapperspb.UInt32(math.MaxUint32),
		MaxRetries:         wrapperspb.UInt32(math.MaxUint32),
		TrackRemaining:     true,
	}
	if v := cp.GetTcp().GetMaxConnections(); v > 0 {
		t.MaxConnections = wrapperspb.UInt32(uint32(v))
	}
	if v := cp.GetHttp().GetHttp1MaxPendingRequests(); v > 0 {
		t.MaxPendingRequests = wrapperspb.UInt32(uint32(v))
	}
	if v := cp.GetHttp().GetHttp2MaxRequests(); v > 0 {
		t.MaxRequests = wrapperspb.UInt32(uint32(v))
	}
	if v := cp.GetHttp().GetMaxRetries(); v > 0 {
		t.MaxRetries = wrapperspb.UInt32(uint32(v))
	}
	return &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{t}}
}

// OutlierDetection maps Istio's outlierDetection (nil for nil); success-rate
// ejection is disabled and error kinds are enforced at 100% when set.
func OutlierDetection(in *networking.OutlierDetection) *clusterv3.OutlierDetection {
	if in == nil {
		return nil
	}
	out := &clusterv3.OutlierDetection{EnforcingSuccessRate: wrapperspb.UInt32(0)}
	enforce := func(v uint32) *wrapperspb.UInt32Value {
		if v > 0 {
			return wrapperspb.UInt32(100)
		}
		return wrapperspb.UInt32(0)
	}
	if e := in.GetConsecutive_5XxErrors(); e != nil {
		out.Consecutive_5Xx, out.EnforcingConsecutive_5Xx = wrapperspb.UInt32(e.GetValue()), enforce(e.GetValue())
	} else if v := in.GetConsecutiveErrors(); v > 0 {
		out.Consecutive_5Xx, out.EnforcingConsecutive_5Xx = wrapperspb.UInt32(uint32(v)), enforce(uint32(v))
	}
	if e := in.GetConsecutiveGatewayErrors(); e != nil {
		out.ConsecutiveGatewayFailure, out.EnforcingConsecutiveGatewayFailure = wrapperspb.UInt32(e.GetValue()), enforce(e.GetValue())
	}
	if in.GetInterval() != nil {
		out.Interval = durationpb.New(in.GetInterval().AsDuration())
	}
	if in.GetBaseEjectionTime() != nil {
		out.BaseEjectionTime = durationpb.New(in.GetBaseEjectionTime().AsDuration())
	}
	if in.GetMaxEjectionPercent() > 0 {
		out.MaxEjectionPercent = wrapperspb.UInt32(uint32(in.GetMaxEjectionPercent()))
	}
	return out
}

// protocolOptions sets HTTP/2 upstream for gRPC and HTTP/2 ports and the
// per-connection request limit; nil when neither applies.
func protocolOptions(port model.ServicePort, h *networking.ConnectionPoolSettings_HTTPSettings) *httpv3.HttpProtocolOptions {
	proto := strings.ToUpper(port.Protocol)
	h2 := proto == "GRPC" || proto == "HTTP2" || proto == "GRPC-WEB"
	if !h2 && h.GetMaxRequestsPerConnection() <= 0 && h.GetIdleTimeout() == nil {
		return nil
	}
	out := &httpv3.HttpProtocolOptions{}
	if h.GetMaxRequestsPerConnection() > 0 || h.GetIdleTimeout() != nil {
		out.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{}
		if v := h.GetMaxRequestsPerConnection(); v > 0 {
			out.CommonHttpProtocolOptions.MaxRequestsPerConnection = wrapperspb.UInt32(uint32(v))
		}
		if h.GetIdleTimeout() != nil {
			out.CommonHttpProtocolOptions.IdleTimeout = durationpb.New(h.GetIdleTimeout().AsDuration())
		}
	}
	if h2 {
		out.UpstreamProtocolOptions = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}}}}
	} else {
		out.UpstreamProtocolOptions = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}}}}
	}
	return out
}
