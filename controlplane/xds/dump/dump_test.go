package dump

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNode(t *testing.T) {
	n := Node("router~1~gw.ns~ns.svc.cluster.local", map[string]string{"istio": "ingressgateway"}, "ns", false)
	f := n.GetMetadata().GetFields()
	if f["LABELS"].GetStructValue().GetFields()["istio"].GetStringValue() != "ingressgateway" || f["NAMESPACE"].GetStringValue() != "ns" {
		t.Fatalf("metadata = %v", n.GetMetadata())
	}
	if _, ok := f["GENERATOR"]; ok {
		t.Fatal("GENERATOR on an Envoy node")
	}
	p := Node("client", nil, "", true)
	if p.GetMetadata().GetFields()["GENERATOR"].GetStringValue() != "grpc" || p.GetMetadata().GetFields()["LABELS"] != nil {
		t.Fatalf("proxyless metadata = %v", p.GetMetadata())
	}
}

func TestReferences(t *testing.T) {
	rds := func(name string) *anypb.Any {
		return mustAny(t, &hcmv3.HttpConnectionManager{RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: name}}})
	}
	tlsSocket := &corev3.TransportSocket{Name: "tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &tlsv3.DownstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: "bookinfo-cert"}}}})}}
	l := &listenerv3.Listener{Name: "0.0.0.0_443", FilterChains: []*listenerv3.FilterChain{{
		Filters:         []*listenerv3.Filter{{Name: "hcm", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: rds("https.443")}}},
		TransportSocket: tlsSocket,
	}}}
	api := &listenerv3.Listener{Name: "reviews:9080", ApiListener: &listenerv3.ApiListener{ApiListener: rds("reviews:9080")}}
	routes, secrets, endpoints := map[string]bool{}, map[string]bool{}, map[string]bool{}
	listenerRefs(l, routes, secrets)
	listenerRefs(api, routes, secrets)
	clusterRefs(&clusterv3.Cluster{Name: "a", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{ServiceName: "svc-a"}}, endpoints, secrets)
	clusterRefs(&clusterv3.Cluster{Name: "b", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}}, endpoints, secrets)
	clusterRefs(&clusterv3.Cluster{Name: "dns", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}}, endpoints, secrets)
	if !routes["https.443"] || !routes["reviews:9080"] || len(routes) != 2 {
		t.Fatalf("routes = %v", routes)
	}
	if !secrets["bookinfo-cert"] || len(secrets) != 1 {
		t.Fatalf("secrets = %v", secrets)
	}
	if !endpoints["svc-a"] || !endpoints["b"] || len(endpoints) != 2 {
		t.Fatalf("endpoints = %v", endpoints)
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	c := newCollector(false)
	s := &tlsv3.Secret{Name: "cert", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "CERT"}},
		PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "SECRET-KEY"}},
	}}}
	c.types["type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"].got["cert"] = entry{resource: resource{name: "cert", version: "v1", any: mustAny(t, s)}}
	js, err := JSON(c.configDump())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), "SECRET-KEY") || !strings.Contains(string(js), `"inlineString": "[redacted]"`) || !strings.Contains(string(js), `"versionInfo": "v1"`) {
		t.Fatalf("dump:\n%s", js)
	}
}
