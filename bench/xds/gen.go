package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Kinds of proxies the benchmark drives.
const (
	kindGateway   = "gateway"
	kindProxyless = "proxyless"
)

// benchNamespace holds every generated service.
const benchNamespace = "bench"

// meshSpec describes the generated configuration.
type meshSpec struct {
	kind     string // kindGateway or kindProxyless
	services int
	files    int
}

// serviceName is the name of generated service i.
func serviceName(i int) string { return fmt.Sprintf("svc-%d", i) }

// serviceHost is the fully qualified host of a generated service.
func serviceHost(name string) string { return name + "." + benchNamespace + ".svc.cluster.local" }

// clusterName is the Istio-style cluster name of a service subset.
func clusterName(name, subset string) string {
	return fmt.Sprintf("outbound|9080|%s|%s", subset, serviceHost(name))
}

// endpointAddr is the address of one generated endpoint: v1 lives in
// 127.1.0.0/16 and v2 in 127.2.0.0/16, so every address is distinct.
func endpointAddr(i int, subset string) string {
	second := 1
	if subset == "v2" {
		second = 2
	}
	return fmt.Sprintf("127.%d.%d.%d", second, (i>>8)&255, i&255)
}

// gatewayYAML is the one Gateway every gateway-kind VirtualService binds to.
const gatewayYAML = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bench-gw
  namespace: istio-system
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 8080
      name: http
      protocol: HTTP
    hosts:
    - "*.bench.example.com"
`

// serviceYAML writes the four documents of one service: a Service, two
// EndpointSlices (v1, v2), a DestinationRule with both subsets and a
// VirtualService splitting 90/10. v1Addr overrides the v1 endpoint address
// when not empty (the endpoint-only change).
func serviceYAML(b *strings.Builder, kind, name string, idx int, v1Addr string) {
	port := "http"
	if kind == kindProxyless {
		port = "grpc"
	}
	fmt.Fprintf(b, `---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  ports:
  - name: %[3]s
    port: 9080
`, name, benchNamespace, port)
	for _, subset := range []string{"v1", "v2"} {
		addr := endpointAddr(idx, subset)
		if subset == "v1" && v1Addr != "" {
			addr = v1Addr
		}
		fmt.Fprintf(b, `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %[1]s-%[3]s
  namespace: %[2]s
  labels:
    kubernetes.io/service-name: %[1]s
    app: %[1]s
    version: %[3]s
addressType: IPv4
ports:
- name: %[4]s
  port: 9080
endpoints:
- addresses: ["%[5]s"]
  zone: zone-a
`, name, benchNamespace, subset, port, addr)
	}
	fmt.Fprintf(b, `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  host: %[1]s
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
`, name, benchNamespace)
	fmt.Fprintf(b, `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
`, name, benchNamespace)
	if kind == kindGateway {
		fmt.Fprintf(b, `  hosts:
  - %[1]s.bench.example.com
  gateways:
  - istio-system/bench-gw
`, name)
	} else {
		fmt.Fprintf(b, "  hosts:\n  - %s\n", name)
	}
	fmt.Fprintf(b, `  http:
  - route:
    - destination:
        host: %[1]s
        subset: v1
        port:
          number: 9080
      weight: 90
    - destination:
        host: %[1]s
        subset: v2
        port:
          number: 9080
      weight: 10
`, name)
}

// fileOf is the index of the file that holds service i.
func (s meshSpec) fileOf(i int) int { return i % s.files }

// fileYAML renders config file f; overrides maps a service index to the
// address of its v1 endpoint when it differs from the default.
func (s meshSpec) fileYAML(f int, overrides map[int]string) []byte {
	var b strings.Builder
	for i := f; i < s.services; i += s.files {
		serviceYAML(&b, s.kind, serviceName(i), i, overrides[i])
	}
	return []byte(b.String())
}

func fileName(f int) string { return fmt.Sprintf("services-%02d.yaml", f) }

// write creates the whole configuration folder.
func (s meshSpec) write(dir string) error {
	if s.files < 1 {
		s.files = 1
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if s.kind == kindGateway {
		if err := os.WriteFile(filepath.Join(dir, "gateway.yaml"), []byte(gatewayYAML), 0o644); err != nil {
			return err
		}
	}
	for f := 0; f < s.files; f++ {
		if err := os.WriteFile(filepath.Join(dir, fileName(f)), s.fileYAML(f, nil), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// addedServiceYAML is a new file holding one extra service (index idx, never
// used by the base config).
func addedServiceYAML(kind, name string, idx int) []byte {
	var b strings.Builder
	serviceYAML(&b, kind, name, idx, "")
	return []byte(b.String())
}

// writeAtomic replaces path by data in one rename, so the watcher never
// reads a half-written file. The temporary name is not a config file
// (a leading dot and no .yaml extension).
func writeAtomic(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
