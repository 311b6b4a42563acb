package xds

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/rosenmesh/rosen/controlplane/translate"
)

// A proxyless node with POD_PORTS is a gRPC server: namespace, labels and
// ports select its RBAC, so they are in its group key; without POD_PORTS it
// stays in the one proxyless group whatever else it sends.
func TestClassifyProxylessServer(t *testing.T) {
	server := func(md map[string]any) *corev3.Node {
		md["GENERATOR"] = "grpc"
		return &corev3.Node{Id: "sidecar~10.0.0.4~reviews-v1-x.default~default.svc.cluster.local", Metadata: meta(t, md)}
	}
	cases := []struct {
		name  string
		node  *corev3.Node
		ports []uint32
		ns    string
		group string
		err   string
	}{
		{name: "client with namespace and labels shares the proxyless group",
			node:  server(map[string]any{"NAMESPACE": "default", "LABELS": map[string]any{"app": "reviews"}}),
			group: "proxyless"},
		{name: "server",
			node:  server(map[string]any{"NAMESPACE": "default", "LABELS": map[string]any{"app": "reviews"}, "POD_PORTS": `[{"name":"grpc","containerPort":7071,"protocol":"TCP"},{"containerPort":7070},{"containerPort":53,"protocol":"UDP"}]`}),
			ports: []uint32{7070, 7071}, ns: "default", group: `proxyless/default/"app"="reviews"/[7070 7071]`},
		{name: "server namespace from the id",
			node:  server(map[string]any{"POD_PORTS": `[{"containerPort":7070}]`}),
			ports: []uint32{7070}, ns: "default", group: `proxyless/default//[7070]`},
		{name: "garbage POD_PORTS", node: server(map[string]any{"NAMESPACE": "default", "POD_PORTS": `{"containerPort":7070}`}), err: "POD_PORTS: want a JSON list"},
		{name: "port out of range", node: server(map[string]any{"NAMESPACE": "default", "POD_PORTS": `[{"containerPort":70000}]`}), err: "POD_PORTS[0].containerPort: 70000"},
		{name: "only UDP ports", node: server(map[string]any{"NAMESPACE": "default", "POD_PORTS": `[{"containerPort":53,"protocol":"UDP"}]`}), err: "at least one TCP port"},
		{name: "too many ports", node: server(map[string]any{"NAMESPACE": "default", "POD_PORTS": manyPorts(maxInboundPorts + 1)}), err: "POD_PORTS: 101 TCP ports"},
		{name: "as many ports as allowed",
			node:  server(map[string]any{"NAMESPACE": "default", "POD_PORTS": manyPorts(maxInboundPorts)}),
			ports: portRange(maxInboundPorts), ns: "default", group: `proxyless/default//` + fmt.Sprint(portRange(maxInboundPorts))},
		{name: "no namespace", node: &corev3.Node{Id: "client-1", Metadata: meta(t, map[string]any{"POD_PORTS": `[{"containerPort":7070}]`})}, err: "needs metadata NAMESPACE"},
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
			if info.Proxy.Kind != translate.Proxyless || info.Group != c.group || info.Proxy.Namespace != c.ns || !slices.Equal(info.Proxy.InboundPorts, c.ports) {
				t.Fatalf("got %+v group %q, want ports %v ns %q group %q", info.Proxy, info.Group, c.ports, c.ns, c.group)
			}
		})
	}
}

// manyPorts is POD_PORTS with TCP ports 1 to n (each listed twice, and a UDP
// one: only distinct TCP ports count).
func manyPorts(n int) string {
	var b strings.Builder
	b.WriteString(`[{"containerPort":53,"protocol":"UDP"}`)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `,{"containerPort":%d},{"containerPort":%d}`, i, i)
	}
	return b.String() + "]"
}

func portRange(n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i + 1)
	}
	return out
}
