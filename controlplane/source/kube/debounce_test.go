package kube

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/integration/kubeenv"
)

// TestEndpointChangesSkipTheConfigDebounce: on a real API server, an
// EndpointSlice change reaches the set after the short endpoint debounce,
// a Service change only after the full (here 2 s) config debounce.
func TestEndpointChangesSkipTheConfigDebounce(t *testing.T) {
	bin := kubeenv.Require(t)
	etcd := kubeenv.StartEtcd(t, bin)
	api := kubeenv.StartAPIServer(t, bin, etcd, "real")
	kubeenv.MustApply(t, api.Config(), limitedRBAC+"---\n"+slice("reviews-1", "10.0.0.1"))
	const debounce = 2 * time.Second
	src, err := New(Options{Clusters: []ClusterConfig{{ID: "real", REST: api.Config()}}, Debounce: debounce, MaxDelay: 2 * debounce, Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if src.opts.EndpointDebounce != DefaultEndpointDebounce {
		t.Fatalf("endpoint debounce %s", src.opts.EndpointDebounce)
	}
	var mu sync.Mutex
	var last *config.Set
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(s *config.Set, _ error) { mu.Lock(); last = s; mu.Unlock() })
	}()
	t.Cleanup(func() { cancel(); <-done })
	has := func(kind, name string) bool {
		mu.Lock()
		defer mu.Unlock()
		if last == nil {
			return false
		}
		for _, o := range last.Objects {
			if o.Kind == kind && o.Name == name {
				return true
			}
		}
		return false
	}
	waitFor(t, func() error {
		if !has(config.KindEndpointSlice, "reviews-1@real") {
			return fmt.Errorf("no first set")
		}
		return nil
	})
	time.Sleep(debounce) // nothing pending

	start := time.Now()
	kubeenv.MustApply(t, api.Config(), slice("reviews-2", "10.0.0.2"))
	waitFor(t, func() error {
		if !has(config.KindEndpointSlice, "reviews-2@real") {
			return fmt.Errorf("slice not in the set")
		}
		return nil
	})
	if took := time.Since(start); took >= debounce/2 {
		t.Errorf("an EndpointSlice change took %s, as long as a config change", took)
	} else {
		t.Logf("EndpointSlice change in the set after %s", took)
	}

	start = time.Now()
	kubeenv.MustApply(t, api.Config(), "apiVersion: v1\nkind: Service\nmetadata: {name: ratings, namespace: test}\nspec:\n  ports: [{name: http, port: 9080}]\n")
	waitFor(t, func() error {
		if !has(config.KindService, "ratings") {
			return fmt.Errorf("service not in the set")
		}
		return nil
	})
	if took := time.Since(start); took < debounce-100*time.Millisecond {
		t.Errorf("a Service change took %s, less than the config debounce %s", took, debounce)
	} else {
		t.Logf("Service change in the set after %s", took)
	}
}
