package file

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rosenmesh/rosen/controlplane/config"
)

// benchFiles writes 1,000 files of 5 documents each (Service, two
// EndpointSlices, DestinationRule, VirtualService with 10 routes): 5,000
// documents, the shape of bench/translate's mesh.
func benchFiles(b *testing.B) (dir string, rewrite func(i, port int)) {
	dir = b.TempDir()
	doc := func(i, port int) string {
		s := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: svc-%[1]d, namespace: bench}
spec:
  ports: [{name: grpc, port: %[2]d}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc-%[1]d-v1, namespace: bench, labels: {kubernetes.io/service-name: svc-%[1]d, version: v1}}
addressType: IPv4
ports: [{name: grpc, port: 9080}]
endpoints: [{addresses: ["10.1.%[3]d.%[4]d"], zone: zone-a}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc-%[1]d-v2, namespace: bench, labels: {kubernetes.io/service-name: svc-%[1]d, version: v2}}
addressType: IPv4
ports: [{name: grpc, port: 9080}]
endpoints: [{addresses: ["10.2.%[3]d.%[4]d"], zone: zone-a}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc-%[1]d, namespace: bench}
spec:
  host: svc-%[1]d
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-%[1]d, namespace: bench}
spec:
  hosts: [svc-%[1]d]
  http:
`, i, port, i>>8, i&255)
		for r := 0; r < 10; r++ {
			s += fmt.Sprintf("  - match: [{uri: {prefix: /r%d/}}]\n    route: [{destination: {host: svc-%d, subset: v1}, weight: 90}, {destination: {host: svc-%d, subset: v2}, weight: 10}]\n    timeout: 5s\n", r, i, i)
		}
		return s
	}
	rewrite = func(i, port int) {
		p := filepath.Join(dir, fmt.Sprintf("svc-%04d.yaml", i))
		if err := os.WriteFile(p, []byte(doc(i, port)), 0o644); err != nil {
			b.Fatal(err)
		}
		// An mtime older than the racy window, as for a file edited a while ago.
		at := time.Now().Add(-time.Hour).Add(time.Duration(port) * time.Second)
		if err := os.Chtimes(p, at, at); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 1000; i++ {
		rewrite(i, 9080)
	}
	return dir, rewrite
}

// BenchmarkReloadAll5kDocs is the reload before the cache: every file
// parsed again (config.LoadDirs).
func BenchmarkReloadAll5kDocs(b *testing.B) {
	dir, _ := benchFiles(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := config.LoadDirs(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReloadOneChanged5kDocs is a reload after one file of 1,000
// changed: that file is parsed, the others come from the cache.
func BenchmarkReloadOneChanged5kDocs(b *testing.B) {
	dir, rewrite := benchFiles(b)
	c := newParseCache()
	if _, _, err := c.load([]string{dir}); err != nil {
		b.Fatal(err)
	}
	port := 9080
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		port++
		rewrite(500, port)
		b.StartTimer()
		_, st, err := c.load([]string{dir})
		if err != nil {
			b.Fatal(err)
		}
		if st.parsed != 1 {
			b.Fatalf("parsed %d files, want 1", st.parsed)
		}
	}
}
