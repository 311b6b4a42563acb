// Package translatebench times Rosen's translation of a large mesh: 1,000
// services × 10 HTTP routes (10,000 routes with matches, weighted subsets,
// timeouts and retries), bound to one ingress gateway or served to proxyless
// gRPC clients as mesh routes.
//
//	go test ./bench/translate -run '^$' -bench . -benchmem
package translatebench

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/istio"
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

const (
	services         = 1000
	routesPerService = 10
	totalRoutes      = services * routesPerService
)

var (
	gatewayProxy   = translate.Proxy{Kind: translate.Gateway, Labels: map[string]string{"istio": "ingressgateway"}, Namespace: "istio-system"}
	proxylessProxy = translate.Proxy{Kind: translate.Proxyless}
)

// meshYAML renders the whole configuration as one multi-document file.
func meshYAML(gateway bool) []byte {
	var b strings.Builder
	if gateway {
		b.WriteString(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bench-gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*.bench.example.com"]
`)
	}
	for i := 0; i < services; i++ {
		name := fmt.Sprintf("svc-%d", i)
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: bench}
spec:
  ports: [{name: grpc, port: 9080}]
`, name)
		for _, v := range []string{"v1", "v2"} {
			fmt.Fprintf(&b, `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %[1]s-%[2]s
  namespace: bench
  labels: {kubernetes.io/service-name: %[1]s, version: %[2]s}
addressType: IPv4
ports: [{name: grpc, port: 9080}]
endpoints: [{addresses: ["127.%[3]d.%[4]d.%[5]d"], zone: zone-a}]
`, name, v, map[string]int{"v1": 1, "v2": 2}[v], (i>>8)&255, i&255)
		}
		fmt.Fprintf(&b, `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: %[1]s, namespace: bench}
spec:
  host: %[1]s
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %[1]s, namespace: bench}
spec:
`, name)
		if gateway {
			fmt.Fprintf(&b, "  hosts: [%s.bench.example.com]\n  gateways: [istio-system/bench-gw]\n", name)
		} else {
			fmt.Fprintf(&b, "  hosts: [%s]\n", name)
		}
		b.WriteString("  http:\n")
		for r := 0; r < routesPerService; r++ {
			fmt.Fprintf(&b, "  - name: r%d\n", r)
			switch {
			case r == routesPerService-1: // the catch-all keeps the user's order last
			case r%3 == 0:
				fmt.Fprintf(&b, "    match:\n    - uri: {prefix: /api/v%d/}\n      headers: {x-tenant: {exact: t%d}}\n", r, r)
			case r%3 == 1:
				fmt.Fprintf(&b, "    match:\n    - uri: {regex: \"/items/[0-9]+/v%d\"}\n", r)
			default:
				fmt.Fprintf(&b, "    match:\n    - uri: {exact: /exact/%d}\n      method: {exact: GET}\n", r)
			}
			fmt.Fprintf(&b, `    route:
    - destination: {host: %[1]s, subset: v1, port: {number: 9080}}
      weight: 90
    - destination: {host: %[1]s, subset: v2, port: {number: 9080}}
      weight: 10
    timeout: 5s
    retries: {attempts: 2, perTryTimeout: 1s, retryOn: "unavailable,cancelled"}
`, name)
		}
	}
	return []byte(b.String())
}

func buildMesh(tb testing.TB, gateway bool) *model.Mesh {
	tb.Helper()
	objs, err := config.ParseYAML("bench.yaml", meshYAML(gateway))
	if err != nil {
		tb.Fatal(err)
	}
	m, err := istio.Build(&config.Set{Objects: objs})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// countRoutes counts the routes generated from VirtualServices: those that
// forward to clusters (the gateway's own catch-all 404 host is left out).
func countRoutes(r *translate.Resources) int {
	n := 0
	for _, rc := range r.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, rt := range vh.GetRoutes() {
				if rt.GetRoute().GetWeightedClusters() != nil || rt.GetRoute().GetCluster() != "" {
					n++
				}
			}
		}
	}
	return n
}

// TestMeshHas10kRoutes makes sure the benchmarks measure what they claim:
// 10,000 routes reach each proxy kind, and the result is valid.
func TestMeshHas10kRoutes(t *testing.T) {
	if testing.Short() {
		t.Skip("large mesh")
	}
	for _, c := range []struct {
		name    string
		gateway bool
		proxy   translate.Proxy
	}{{"gateway", true, gatewayProxy}, {"proxyless", false, proxylessProxy}} {
		t.Run(c.name, func(t *testing.T) {
			r, err := translate.Translate(buildMesh(t, c.gateway), c.proxy)
			if err != nil {
				t.Fatal(err)
			}
			if got := countRoutes(r); got != totalRoutes {
				t.Fatalf("%d routes, want %d", got, totalRoutes)
			}
			if got := len(r.Clusters); got < 2*services {
				t.Fatalf("%d clusters, want ≥ %d", got, 2*services)
			}
			if err := validate.Resources(r); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func benchTranslate(b *testing.B, gateway bool, p translate.Proxy) {
	m := buildMesh(b, gateway)
	loop(b, func() {
		r, err := translate.Translate(m, p)
		if err != nil {
			b.Fatal(err)
		}
		if countRoutes(r) != totalRoutes {
			b.Fatal("route count changed")
		}
	})
}

func benchValidate(b *testing.B, gateway bool, p translate.Proxy) {
	r, err := translate.Translate(buildMesh(b, gateway), p)
	if err != nil {
		b.Fatal(err)
	}
	loop(b, func() {
		if err := validate.Resources(r); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkTranslateGateway10kRoutes(b *testing.B)   { benchTranslate(b, true, gatewayProxy) }
func BenchmarkTranslateProxyless10kRoutes(b *testing.B) { benchTranslate(b, false, proxylessProxy) }
func BenchmarkValidateGateway10kRoutes(b *testing.B)    { benchValidate(b, true, gatewayProxy) }
func BenchmarkValidateProxyless10kRoutes(b *testing.B)  { benchValidate(b, false, proxylessProxy) }

// BenchmarkParseBuild10kRoutes is the part of a config change before
// translation: strict YAML parsing of 6,001 documents and istio.Build.
func BenchmarkParseBuild10kRoutes(b *testing.B) {
	data := meshYAML(true)
	b.SetBytes(int64(len(data)))
	loop(b, func() {
		objs, err := config.ParseYAML("bench.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := istio.Build(&config.Set{Objects: objs}); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkBuild10kRoutes is istio.Build alone on the parsed 6,001
// documents: what every change costs once the file source's cache has
// parsed the files.
func BenchmarkBuild10kRoutes(b *testing.B) {
	objs, err := config.ParseYAML("bench.yaml", meshYAML(true))
	if err != nil {
		b.Fatal(err)
	}
	set := &config.Set{Objects: objs}
	loop(b, func() {
		if _, err := istio.Build(set); err != nil {
			b.Fatal(err)
		}
	})
}
