package kube

import (
	"errors"
	"testing"

	"k8s.io/client-go/rest"
)

func hasKind(c *cluster, kind string) bool {
	for _, k := range c.kinds {
		if k.Kind == kind {
			return true
		}
	}
	return false
}

// TestConfigFrom: Istio and Rosen config is read from the primary only, or
// from every cluster; endpoints always from all.
func TestConfigFrom(t *testing.T) {
	clusters := []ClusterConfig{{ID: "a", REST: &rest.Config{Host: "https://127.0.0.1:1"}}, {ID: "b", REST: &rest.Config{Host: "https://127.0.0.1:2"}}}
	for _, c := range []struct {
		mode       string
		bReadsConf bool
	}{{"", false}, {ConfigFromPrimary, false}, {ConfigFromAll, true}} {
		s, err := New(Options{Clusters: clusters, ConfigFrom: c.mode})
		if err != nil {
			t.Fatal(err)
		}
		a, b := s.list()[0], s.list()[1]
		if !hasKind(a, "VirtualService") || !hasKind(a, "RateLimitPolicy") || !a.readConfig {
			t.Errorf("%q: the primary does not read config", c.mode)
		}
		if hasKind(b, "VirtualService") != c.bReadsConf || b.readConfig != c.bReadsConf {
			t.Errorf("%q: cluster b reads config: %v, want %v", c.mode, hasKind(b, "VirtualService"), c.bReadsConf)
		}
		if !hasKind(b, "EndpointSlice") || !hasKind(b, "Pod") || !hasKind(b, "Service") {
			t.Errorf("%q: cluster b does not read endpoints", c.mode)
		}
	}
	if _, err := New(Options{Clusters: clusters, ConfigFrom: "some"}); !errors.Is(err, ErrUnknownConfigMode) {
		t.Errorf("bad mode: %v", err)
	}
	if _, err := New(Options{}); !errors.Is(err, ErrNoClusters) {
		t.Errorf("no clusters: %v", err)
	}
}
