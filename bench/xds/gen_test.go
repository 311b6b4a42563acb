package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/istio"
	"github.com/rosenmesh/rosen/controlplane/translate"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

// The generated folder must be valid Rosen input, and translate to the names
// the probes wait for.
func TestGeneratedConfigTranslates(t *testing.T) {
	for _, kind := range []string{kindGateway, kindProxyless} {
		t.Run(kind, func(t *testing.T) {
			const services = 12
			dir := t.TempDir()
			spec := meshSpec{kind: kind, services: services, files: 5}
			if err := spec.write(dir); err != nil {
				t.Fatal(err)
			}
			// The added service and an endpoint edit are valid too.
			if err := writeAtomic(filepath.Join(dir, "added-000.yaml"), addedServiceYAML(kind, serviceName(services), services)); err != nil {
				t.Fatal(err)
			}
			f := spec.fileOf(3)
			if err := writeAtomic(filepath.Join(dir, fileName(f)), spec.fileYAML(f, map[int]string{3: "127.3.0.1"})); err != nil {
				t.Fatal(err)
			}
			if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(leftovers) > 0 {
				t.Fatalf("temporary files left: %v", leftovers)
			}
			set, err := config.LoadDirs(dir)
			if err != nil {
				t.Fatal(err)
			}
			m, err := istio.Build(set)
			if err != nil {
				t.Fatal(err)
			}
			p := translate.Proxy{Kind: translate.Proxyless}
			if kind == kindGateway {
				p = translate.Proxy{Kind: translate.Gateway, Namespace: "istio-system", Labels: map[string]string{"istio": "ingressgateway"}}
			}
			res, err := translate.Translate(m, p)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Resources(res); err != nil {
				t.Fatal(err)
			}
			clusters := map[string]bool{}
			for _, c := range res.Clusters {
				clusters[c.GetName()] = true
			}
			for _, want := range []string{clusterName(serviceName(0), "v1"), clusterName(serviceName(services), "v2")} {
				if !clusters[want] {
					t.Errorf("no cluster %s among %d", want, len(clusters))
				}
			}
			var edited bool
			for _, cla := range res.Endpoints {
				if cla.GetClusterName() == clusterName(serviceName(3), "v1") {
					edited = strings.Contains(cla.String(), "127.3.0.1")
				}
			}
			if !edited {
				t.Errorf("the endpoint edit of %s did not reach its ClusterLoadAssignment", serviceName(3))
			}
			routes := 0
			for _, rc := range res.Routes {
				for _, vh := range rc.GetVirtualHosts() {
					routes += len(vh.GetRoutes())
				}
			}
			if routes < services+1 {
				t.Errorf("%d routes for %d services", routes, services+1)
			}
		})
	}
}

func TestWriteAtomicReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.yaml")
	for _, s := range []string{"one", "two"} {
		if err := writeAtomic(path, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "two" {
		t.Fatalf("got %q, %v", b, err)
	}
}
