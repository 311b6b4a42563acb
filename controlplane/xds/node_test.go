package xds

import (
	"fmt"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/rosenmesh/rosen/controlplane/translate"
)

func meta(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name      string
		node      *corev3.Node
		kind      translate.ProxyKind
		namespace string
		labels    map[string]string
		group     string
		err       string
	}{
		{name: "gateway from id and labels",
			node: &corev3.Node{Id: "router~10.0.0.1~gw-1.istio-system~istio-system.svc.cluster.local",
				Metadata: meta(t, map[string]any{"LABELS": map[string]any{"istio": "ingressgateway", "app": "gw"}, "CLUSTER_ID": "c1"})},
			kind: translate.Gateway, namespace: "istio-system", labels: map[string]string{"istio": "ingressgateway", "app": "gw"},
			group: `router/istio-system/"app"="gw","istio"="ingressgateway"`},
		{name: "gateway without LABELS has empty labels",
			node: &corev3.Node{Id: "router~10.0.0.1~gw-1.edge~edge.svc.cluster.local"},
			kind: translate.Gateway, namespace: "edge", labels: map[string]string{}, group: "router/edge/"},
		{name: "NAMESPACE metadata wins over the id",
			node: &corev3.Node{Id: "router~10.0.0.1~gw-1.edge~edge.svc.cluster.local", Metadata: meta(t, map[string]any{"NAMESPACE": "other"})},
			kind: translate.Gateway, namespace: "other", labels: map[string]string{}, group: "router/other/"},
		{name: "namespace from the DNS domain when the pod field has none",
			node: &corev3.Node{Id: "router~10.0.0.1~gw~edge.svc.cluster.local"},
			kind: translate.Gateway, namespace: "edge", labels: map[string]string{}, group: "router/edge/"},
		{name: "sidecar groups by namespace only",
			node: &corev3.Node{Id: "sidecar~10.0.0.2~reviews-v1-abc.default~default.svc.cluster.local", Metadata: meta(t, map[string]any{"LABELS": map[string]any{"app": "reviews"}})},
			kind: translate.Sidecar, namespace: "default", group: "sidecar/default"},
		{name: "plain id is proxyless",
			node: &corev3.Node{Id: "client-7"}, kind: translate.Proxyless, group: "proxyless"},
		{name: "GENERATOR grpc is proxyless whatever the id",
			node: &corev3.Node{Id: "sidecar~10.0.0.3~app.default~default.svc.cluster.local", Metadata: meta(t, map[string]any{"GENERATOR": "grpc"})},
			kind: translate.Proxyless, group: "proxyless"},
		{name: "labels that look alike do not collide",
			node: &corev3.Node{Id: "router~1~g.ns~ns.svc", Metadata: meta(t, map[string]any{"LABELS": map[string]any{"a": "b,c=d"}})},
			kind: translate.Gateway, namespace: "ns", labels: map[string]string{"a": "b,c=d"}, group: `router/ns/"a"="b,c=d"`},
		{name: "no id", node: &corev3.Node{}, err: "must carry a node"},
		{name: "nil node", node: nil, err: "must carry a node"},
		{name: "unknown kind", node: &corev3.Node{Id: "ingress~1~a.b~b.svc"}, err: `kind "ingress"`},
		{name: "no namespace", node: &corev3.Node{Id: "router~1~gw"}, err: "no namespace"},
		// Made-up label sets are group keys held for the group's life: bounded.
		{name: "too many labels", node: &corev3.Node{Id: "router~1~g.ns~ns.svc", Metadata: meta(t, map[string]any{"LABELS": manyLabels(300, 1)})},
			err: "300 labels (limit 256)"},
		{name: "a huge label value", node: &corev3.Node{Id: "router~1~g.ns~ns.svc", Metadata: meta(t, map[string]any{"LABELS": map[string]any{"app": strings.Repeat("x", 4<<20)}})},
			err: "longer than"},
		{name: "labels too large in all", node: &corev3.Node{Id: "router~1~g.ns~ns.svc", Metadata: meta(t, map[string]any{"LABELS": manyLabels(200, 1000)})},
			err: "bytes (limit 65536)"},
		{name: "a proxyless server's labels too", node: &corev3.Node{Id: "server-1", Metadata: meta(t, map[string]any{"GENERATOR": "grpc", "NAMESPACE": "default",
			"POD_PORTS": `[{"containerPort":50051,"protocol":"TCP"}]`, "LABELS": manyLabels(300, 1)})},
			err: "300 labels (limit 256)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, err := classify(c.node)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Proxy.Kind != c.kind || info.Proxy.Namespace != c.namespace || info.Group != c.group {
				t.Fatalf("got kind %q ns %q group %q, want %q %q %q", info.Proxy.Kind, info.Proxy.Namespace, info.Group, c.kind, c.namespace, c.group)
			}
			if c.labels != nil {
				if len(info.Proxy.Labels) != len(c.labels) {
					t.Fatalf("labels = %v, want %v", info.Proxy.Labels, c.labels)
				}
				for k, v := range c.labels {
					if info.Proxy.Labels[k] != v {
						t.Fatalf("labels = %v, want %v", info.Proxy.Labels, c.labels)
					}
				}
			}
		})
	}
}

func manyLabels(n, valueLen int) map[string]any {
	out := make(map[string]any, n)
	for i := range n {
		out[fmt.Sprintf("label-%d", i)] = strings.Repeat("v", valueLen)
	}
	return out
}
