package kube

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	events      *prometheus.CounterVec
	watchErrors *prometheus.CounterVec
	expired     *prometheus.CounterVec
	drops       *prometheus.CounterVec
	state       *prometheus.GaugeVec
	assemble    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rosen_kube_events_total", Help: "Informer events (add, update, delete) by cluster and kind.",
		}, []string{"cluster", "kind"}),
		watchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rosen_kube_watch_errors_total", Help: "List or watch failures by cluster and kind (retried by the informer).",
		}, []string{"cluster", "kind"}),
		expired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rosen_kube_watch_expired_total", Help: "Watches ended with 410 Gone (resource version expired), each followed by a re-list, by cluster and kind.",
		}, []string{"cluster", "kind"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rosen_kube_cluster_drops_total", Help: "Times a cluster's endpoints were dropped after the grace period.",
		}, []string{"cluster"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rosen_kube_cluster_state", Help: "1 for each cluster's current state (Connecting, Synced, Unreachable, Dropped).",
		}, []string{"cluster", "state"}),
		assemble: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rosen_kube_assemble_seconds", Help: "Time to assemble the config set from every cluster's caches.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.watchErrors, m.expired, m.drops, m.state, m.assemble)
	}
	return m
}
