package dump

import (
	"maps"
	"slices"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// configDump arranges what arrived as Envoy's /config_dump does: dynamic
// clusters, endpoints, listeners, route configs and secrets, each with the
// version it came with. Private keys are redacted, as Envoy does.
func (c *collector) configDump() *adminv3.ConfigDump {
	sorted := func(typeURL string) []entry {
		got := c.types[typeURL].got
		out := make([]entry, 0, len(got))
		for _, k := range slices.Sorted(maps.Keys(got)) {
			out = append(out, got[k])
		}
		return out
	}
	version := func(typeURL string) string {
		if l := c.types[typeURL].last; l != nil {
			return l.version
		}
		return ""
	}

	clusters := &adminv3.ClustersConfigDump{VersionInfo: version(resourcev3.ClusterType)}
	for _, e := range sorted(resourcev3.ClusterType) {
		clusters.DynamicActiveClusters = append(clusters.DynamicActiveClusters, &adminv3.ClustersConfigDump_DynamicCluster{
			VersionInfo: e.version, Cluster: e.any, LastUpdated: timestamppb.New(e.at)})
	}
	endpoints := &adminv3.EndpointsConfigDump{}
	for _, e := range sorted(resourcev3.EndpointType) {
		endpoints.DynamicEndpointConfigs = append(endpoints.DynamicEndpointConfigs, &adminv3.EndpointsConfigDump_DynamicEndpointConfig{
			VersionInfo: e.version, EndpointConfig: e.any, LastUpdated: timestamppb.New(e.at)})
	}
	listeners := &adminv3.ListenersConfigDump{VersionInfo: version(resourcev3.ListenerType)}
	for _, e := range sorted(resourcev3.ListenerType) {
		listeners.DynamicListeners = append(listeners.DynamicListeners, &adminv3.ListenersConfigDump_DynamicListener{
			Name: e.name,
			ActiveState: &adminv3.ListenersConfigDump_DynamicListenerState{
				VersionInfo: e.version, Listener: e.any, LastUpdated: timestamppb.New(e.at)},
		})
	}
	routes := &adminv3.RoutesConfigDump{}
	for _, e := range sorted(resourcev3.RouteType) {
		routes.DynamicRouteConfigs = append(routes.DynamicRouteConfigs, &adminv3.RoutesConfigDump_DynamicRouteConfig{
			VersionInfo: e.version, RouteConfig: e.any, LastUpdated: timestamppb.New(e.at)})
	}
	secrets := &adminv3.SecretsConfigDump{}
	for _, e := range sorted(resourcev3.SecretType) {
		secrets.DynamicActiveSecrets = append(secrets.DynamicActiveSecrets, &adminv3.SecretsConfigDump_DynamicSecret{
			Name: e.name, VersionInfo: e.version, Secret: redact(e.any), LastUpdated: timestamppb.New(e.at)})
	}

	out := &adminv3.ConfigDump{}
	for _, m := range []proto.Message{clusters, endpoints, listeners, routes, secrets} {
		a, err := anypb.New(m)
		if err != nil {
			continue // admin types always marshal
		}
		out.Configs = append(out.Configs, a)
	}
	return out
}

// redact replaces a secret's private key with "[redacted]".
func redact(a *anypb.Any) *anypb.Any {
	var s tlsv3.Secret
	if a.UnmarshalTo(&s) != nil || s.GetTlsCertificate().GetPrivateKey() == nil {
		return a
	}
	s.GetTlsCertificate().PrivateKey = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "[redacted]"}}
	r, err := anypb.New(&s)
	if err != nil {
		return a
	}
	return r
}
