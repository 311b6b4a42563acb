package translate_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
)

// TestEDSEndpointsOnlyShapeLoadAssignments pins what the runner's and the
// xDS server's endpoint-only paths rely on (model.StructureHash): the
// endpoints of EDS services reach nothing but ClusterLoadAssignments.
// For every golden case and every proxy kind, moving, relabelling and
// dropping those endpoints leaves listeners, routes, clusters and secrets
// byte for byte the same, and the meshes hash alike.
func TestEDSEndpointsOnlyShapeLoadAssignments(t *testing.T) {
	cases, _ := filepath.Glob("testdata/in/[^_]*.yaml")
	endpointsDiffer := 0
	for _, in := range cases {
		m, _ := goldenCase(t, in)
		moved := *m
		moved.Services = nil
		for _, s := range m.Services {
			c := *s
			if c.Resolution != model.ResolutionDNS {
				c.Endpoints = nil
				for i, ep := range s.Endpoints {
					if i%2 == 1 {
						continue // dropped
					}
					ep.Address = fmt.Sprintf("10.99.%d.%d", i/256, i%256)
					ep.Labels = map[string]string{"moved": "yes"}
					ep.Healthy = !ep.Healthy
					c.Endpoints = append(c.Endpoints, ep)
				}
			}
			moved.Services = append(moved.Services, &c)
		}
		h1, err1 := model.StructureHash(m)
		h2, err2 := model.StructureHash(&moved)
		if err1 != nil || err2 != nil || h1 != h2 {
			t.Fatalf("%s: structure hashes differ (%v, %v)", in, err1, err2)
		}
		proxies := []translate.Proxy{{Kind: translate.Proxyless}, {Kind: translate.Sidecar, Namespace: "default"}}
		for _, g := range m.Gateways {
			proxies = append(proxies, translate.Proxy{Kind: translate.Gateway, Labels: g.Selector, Namespace: g.Namespace})
		}
		for _, p := range proxies {
			a, errA := translate.Translate(m, p)
			b, errB := translate.Translate(&moved, p)
			if errA != nil || errB != nil {
				t.Fatalf("%s: %v, %v", in, errA, errB)
			}
			if !bytes.Equal(structureBytes(t, a), structureBytes(t, b)) {
				t.Errorf("%s, %s proxy: EDS endpoints changed a listener, route, cluster or secret", in, p.Kind)
			}
			if !bytes.Equal(marshalAll(t, a), marshalAll(t, b)) {
				endpointsDiffer++
			}
		}
	}
	if endpointsDiffer == 0 {
		t.Fatal("no case's load assignments changed: the test moved no endpoint")
	}
}

// structureBytes is everything but the load assignments, as bytes to compare.
func structureBytes(t *testing.T, r *translate.Resources) []byte {
	t.Helper()
	var buf bytes.Buffer
	marshalInto(t, &buf, r.Listeners)
	marshalInto(t, &buf, r.Routes)
	marshalInto(t, &buf, r.Clusters)
	marshalInto(t, &buf, r.Secrets)
	return buf.Bytes()
}
