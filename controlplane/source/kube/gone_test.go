package kube

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	discoveryv1client "k8s.io/client-go/kubernetes/typed/discovery/v1"

	"github.com/rosenmesh/rosen/integration/kubeenv"
)

// TestWatchDroppedOrGoneLosesNothing runs the source through a proxy in
// front of a real API server. A dropped watch resumes from its resource
// version (no re-list). A watch answered with 410 Gone (in the stream, as
// an API server answers a compacted resource version, and as the HTTP
// status) makes the informer re-list: the slices created and deleted while
// the watch was gone are all seen, a log line says so, and
// rosen_kube_watch_expired_total counts it.
func TestWatchDroppedOrGoneLosesNothing(t *testing.T) {
	bin := kubeenv.Require(t)
	etcd := kubeenv.StartEtcd(t, bin)
	api := kubeenv.StartAPIServer(t, bin, etcd, "real")
	kubeenv.MustApply(t, api.Config(), limitedRBAC+"---\n"+slice("reviews-1", "10.0.0.1"))
	proxy := kubeenv.NewFaultProxy(t, api)

	obs, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), obs))
	reg := prometheus.NewRegistry()
	src, err := New(Options{Clusters: []ClusterConfig{{ID: "real", REST: proxy.Config()}}, Log: log, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	slices := runSource(t, src)
	waitFor(t, func() error {
		if got := slices(); got != "reviews-1@real" {
			return fmt.Errorf("slices %q", got)
		}
		return nil
	})
	admin := discoveryv1client.NewForConfigOrDie(api.Config()).EndpointSlices("test")
	ctx := context.Background()
	const res = "endpointslices"

	// client-go re-lists after a watch cut within 1 s of its start with no
	// events (a "very short watch"); each cut below comes later than that.
	const settle = 1500 * time.Millisecond

	// A dropped watch: resumed from its resource version, nothing re-listed.
	time.Sleep(settle)
	lists := proxy.Lists(res)
	if n := proxy.DropWatches(res); n != 1 {
		t.Fatalf("%d EndpointSlice watches open, want 1", n)
	}
	kubeenv.MustApply(t, api.Config(), slice("reviews-2", "10.0.0.2"))
	waitFor(t, func() error {
		if got := slices(); got != "reviews-1@real,reviews-2@real" {
			return fmt.Errorf("slices %q", got)
		}
		return nil
	})
	if proxy.Lists(res) != lists {
		t.Errorf("a dropped watch re-listed (%d lists, was %d)", proxy.Lists(res), lists)
	}

	for i, mode := range []struct {
		name string
		mode kubeenv.GoneMode
	}{{"in the stream", kubeenv.GoneInStream}, {"as the HTTP status", kubeenv.GoneStatus}} {
		t.Run("410 "+mode.name, func(t *testing.T) {
			time.Sleep(settle)
			lists, gone := proxy.Lists(res), proxy.Gone(res)
			logs.TakeAll()
			if n := proxy.Expire(res, mode.mode); n != 1 {
				t.Fatalf("%d EndpointSlice watches open, want 1", n)
			}
			// While the watch is gone: one slice created, one deleted. Only a re-list can show both.
			kubeenv.MustApply(t, api.Config(), slice(fmt.Sprintf("reviews-%d", 3+i), "10.0.0.3"))
			if err := admin.Delete(ctx, fmt.Sprintf("reviews-%d", 1+i), metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			want := map[int]string{0: "reviews-2@real,reviews-3@real", 1: "reviews-3@real,reviews-4@real"}[i]
			waitFor(t, func() error {
				if got := slices(); got != want {
					return fmt.Errorf("slices %q, want %q", got, want)
				}
				return nil
			})
			if proxy.Gone(res) == gone || proxy.Lists(res) == lists {
				t.Errorf("410 answers %d→%d, lists %d→%d: the change did not come through a re-list", gone, proxy.Gone(res), lists, proxy.Lists(res))
			}
			var found bool
			for _, e := range logs.All() {
				if e.Message == "watch expired (410 Gone); re-listing the kind" && e.ContextMap()["kind"] == "EndpointSlice" {
					found = true
				}
			}
			if !found {
				t.Errorf("no log line for the expired watch; logged: %v", logs.All())
			}
			if n := testutil.ToFloat64(src.opts.metrics.expired.WithLabelValues("real", "EndpointSlice")); n < float64(i+1) {
				t.Errorf("rosen_kube_watch_expired_total = %v, want at least %d", n, i+1)
			}
		})
	}
	if st := src.Clusters()[0]; st.State != StateSynced || st.Resyncs != 0 {
		t.Errorf("cluster %s after %d resyncs", st.State, st.Resyncs)
	}
}
