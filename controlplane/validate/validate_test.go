package validate_test

import (
	"strings"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

var vsSource = model.Source{File: "vs.yaml", Kind: "VirtualService", Namespace: "istio-system", Name: "shop"}
var gwSource = model.Source{File: "gw.yaml", Kind: "Gateway", Namespace: "istio-system", Name: "gw"}
var svcSource = model.Source{File: "svc.yaml", Kind: "Service", Namespace: "default", Name: "reviews"}

const host = "reviews.default.svc.cluster.local"

func mesh() *model.Mesh {
	return &model.Mesh{
		Services: []*model.Service{{
			Host: host, Namespace: "default", Resolution: model.ResolutionStatic,
			Ports:     []model.ServicePort{{Number: 9080, Name: "http", Protocol: "HTTP"}},
			Endpoints: []model.Endpoint{{Address: "10.0.0.1", Labels: map[string]string{"version": "v1"}, Healthy: true}},
			Subsets:   []model.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}},
			Source:    svcSource,
		}},
		Gateways: []*model.Gateway{{
			Name: "gw", Namespace: "istio-system", Selector: map[string]string{"istio": "ingressgateway"},
			Servers: []model.GatewayServer{{Port: 80, Protocol: "HTTP", Hosts: []string{"*/shop.example.com"}}},
			Source:  gwSource,
		}},
		VirtualServices: []*model.VirtualService{{
			Name: "shop", Namespace: "istio-system", Hosts: []string{"shop.example.com"},
			Gateways: []string{"istio-system/gw", model.MeshGateway},
			HTTP: []model.HTTPRoute{{
				Spec:  &networking.HTTPRoute{Match: []*networking.HTTPMatchRequest{{Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: "/"}}}}},
				Route: []model.Destination{{Host: host, Port: 9080, Subset: "v1", Weight: 100, Cluster: translate.ClusterName(host, 9080, "v1")}},
			}},
			Source: vsSource,
		}},
	}
}

func gatewayResources(t *testing.T) *translate.Resources {
	t.Helper()
	r, err := translate.Translate(mesh(), translate.Proxy{Kind: translate.Gateway, Labels: map[string]string{"istio": "ingressgateway"}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func firstRoute(r *translate.Resources) *routev3.Route { return r.Routes[0].VirtualHosts[0].Routes[0] }

func hcmOf(t *testing.T, l *listenerv3.Listener) *hcmv3.HttpConnectionManager {
	var h hcmv3.HttpConnectionManager
	if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(&h); err != nil {
		t.Fatal(err)
	}
	return &h
}

func setHCM(t *testing.T, l *listenerv3.Listener, h *hcmv3.HttpConnectionManager) {
	a, err := anypb.New(h)
	if err != nil {
		t.Fatal(err)
	}
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
}

func TestValidTranslationsPass(t *testing.T) {
	for _, p := range []translate.Proxy{
		{Kind: translate.Gateway, Labels: map[string]string{"istio": "ingressgateway"}},
		{Kind: translate.Proxyless}, {Kind: translate.Sidecar, Namespace: "default"},
	} {
		r, err := translate.Translate(mesh(), p)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Resources(r); err != nil {
			t.Errorf("%s: %v", p.Kind, err)
		}
	}
	if err := validate.Mesh(mesh()); err != nil {
		t.Errorf("Mesh: %v", err)
	}
}

func TestBadResources(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(t *testing.T, r *translate.Resources)
		want   []string
	}{
		{"regex does not compile", func(t *testing.T, r *translate.Resources) {
			firstRoute(r).Match.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/a("}}
		}, []string{`vs.yaml: VirtualService istio-system/shop: virtual_hosts[0].routes[0].match.safe_regex.regex: RouteConfiguration "http.80": regex "/a(" does not compile as RE2: error parsing regexp: missing closing ): ` + "`/a(`"}},
		{"regex too large", func(t *testing.T, r *translate.Resources) {
			firstRoute(r).Match.Headers = []*routev3.HeaderMatcher{{Name: "x", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
				StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "[a-z]{200}"}}}}}}
		}, []string{`vs.yaml: VirtualService istio-system/shop: virtual_hosts[0].routes[0].match.headers[0].string_match.safe_regex.regex: RouteConfiguration "http.80": regex "[a-z]{200}" is too complex: program size 204 exceeds Envoy's limit 100`}},
		{"route to missing cluster", func(t *testing.T, r *translate.Resources) {
			firstRoute(r).GetRoute().ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: "outbound|9080|v9|" + host}
		}, []string{`vs.yaml: VirtualService istio-system/shop: virtual_hosts[0].routes[0].route.cluster: RouteConfiguration "http.80": cluster "outbound|9080|v9|reviews.default.svc.cluster.local" does not exist`}},
		{"weights sum to zero and mirror to missing cluster", func(t *testing.T, r *translate.Resources) {
			a := firstRoute(r).GetRoute()
			a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{Clusters: []*routev3.WeightedCluster_ClusterWeight{
				{Name: translate.ClusterName(host, 9080, "v1"), Weight: wrapperspb.UInt32(0)},
				{Name: translate.ClusterName(host, 9080, ""), Weight: wrapperspb.UInt32(0)},
			}}}
			a.RequestMirrorPolicies = []*routev3.RouteAction_RequestMirrorPolicy{{Cluster: "nowhere"}}
		}, []string{
			`vs.yaml: VirtualService istio-system/shop: virtual_hosts[0].routes[0].route.weighted_clusters: RouteConfiguration "http.80": weights sum to 0`,
			`vs.yaml: VirtualService istio-system/shop: virtual_hosts[0].routes[0].route.request_mirror_policies[0].cluster: RouteConfiguration "http.80": cluster "nowhere" does not exist`,
		}},
		{"duplicate domain ignoring case", func(t *testing.T, r *translate.Resources) {
			vh := proto.Clone(r.Routes[0].VirtualHosts[0]).(*routev3.VirtualHost)
			vh.Name, vh.Domains = "other", []string{"SHOP.example.com"}
			r.Routes[0].VirtualHosts = append(r.Routes[0].VirtualHosts, vh)
		}, []string{`gw.yaml: Gateway istio-system/gw: virtual_hosts[2].domains[0]: RouteConfiguration "http.80": domain "SHOP.example.com" is already used by virtual_hosts[0].domains[0]`}},
		{"listener refers to missing route config", func(t *testing.T, r *translate.Resources) {
			r.Routes = nil
		}, []string{`gw.yaml: Gateway istio-system/gw: filter_chains[0].filters[0].typed_config.rds.route_config_name: Listener "0.0.0.0_80": route configuration "http.80" does not exist`}},
		{"EDS cluster without load assignment", func(t *testing.T, r *translate.Resources) {
			r.Endpoints = r.Endpoints[1:]
		}, []string{`svc.yaml: Service default/reviews: eds_cluster_config.service_name: Cluster "outbound|9080|v1|reviews.default.svc.cluster.local": no ClusterLoadAssignment "outbound|9080|v1|reviews.default.svc.cluster.local"`}},
		{"overlapping filter chains", func(t *testing.T, r *translate.Resources) {
			l := r.Listeners[0]
			l.FilterChains = append(l.FilterChains, proto.Clone(l.FilterChains[0]).(*listenerv3.FilterChain))
		}, []string{`gw.yaml: Gateway istio-system/gw: filter_chains[1].filter_chain_match: Listener "0.0.0.0_80": matches the same connections as filter_chains[0] (server name "")`}},
		{"invalid HCM inside Any", func(t *testing.T, r *translate.Resources) {
			h := hcmOf(t, r.Listeners[0])
			h.HttpFilters[2].Name = ""
			setHCM(t, r.Listeners[0], h)
		}, []string{`gw.yaml: Gateway istio-system/gw: filter_chains[0].filters[0].typed_config.http_filters[2].name: Listener "0.0.0.0_80": value length must be at least 1 runes`}},
		{"invalid fault config in typed_per_filter_config", func(t *testing.T, r *translate.Resources) {
			a, _ := anypb.New(&faultv3.HTTPFault{Abort: &faultv3.FaultAbort{}})
			firstRoute(r).TypedPerFilterConfig = map[string]*anypb.Any{translate.FaultFilterName: a}
		}, []string{`vs.yaml: VirtualService istio-system/shop: virtual_hosts[0].routes[0].typed_per_filter_config[envoy.filters.http.fault].abort.error_type: RouteConfiguration "http.80": value is required`}},
		{"locality missing and endpoint weight 0", func(t *testing.T, r *translate.Resources) {
			lle := r.Endpoints[0].Endpoints[0]
			lle.Locality = nil
			lle.LbEndpoints[0].LoadBalancingWeight = wrapperspb.UInt32(0)
		}, []string{
			`svc.yaml: Service default/reviews: endpoints[0].lb_endpoints[0].load_balancing_weight: ClusterLoadAssignment "outbound|9080|v1|reviews.default.svc.cluster.local": value must be greater than or equal to 1`,
			`svc.yaml: Service default/reviews: endpoints[0].locality: ClusterLoadAssignment "outbound|9080|v1|reviews.default.svc.cluster.local": locality is not set (grpc-go rejects it)`,
		}},
		{"empty locality", func(t *testing.T, r *translate.Resources) {
			r.Endpoints[0].Endpoints[0].LbEndpoints = nil
		}, []string{`svc.yaml: Service default/reviews: endpoints[0].lb_endpoints: ClusterLoadAssignment "outbound|9080|v1|reviews.default.svc.cluster.local": locality has no endpoints`}},
		{"name too long", func(t *testing.T, r *translate.Resources) {
			r.Endpoints = append(r.Endpoints, &endpointv3.ClusterLoadAssignment{ClusterName: "x"})
			r.Clusters[0].Name = strings.Repeat("c", validate.MaxNameLength+1)
			r.Clusters[0].EdsClusterConfig.ServiceName = "x"
			r.Origins[translate.OriginKey(translate.KindCluster, r.Clusters[0].Name)] = svcSource
		}, []string{
			`vs.yaml: VirtualService istio-system/shop: virtual_hosts[0].routes[0].route.cluster: RouteConfiguration "http.80": cluster "outbound|9080|v1|reviews.default.svc.cluster.local" does not exist`,
			`svc.yaml: Service default/reviews: name: Cluster "` + strings.Repeat("c", validate.MaxNameLength+1) + `": name is 4097 bytes, longer than 4096`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := gatewayResources(t)
			if err := validate.Resources(r); err != nil {
				t.Fatalf("base does not validate: %v", err)
			}
			tc.mutate(t, r)
			err := validate.Resources(r)
			var got []string
			for _, fe := range model.AsFieldErrors(err) {
				got = append(got, fe.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
