package xds

import "github.com/prometheus/client_golang/prometheus"

// metrics are the server's Prometheus collectors.
type metrics struct {
	connected    *prometheus.GaugeVec   // kind
	pushes       *prometheus.CounterVec // type
	nacks        *prometheus.CounterVec // type
	translations *prometheus.CounterVec // mode: full | endpoints
	translateDur *prometheus.HistogramVec
	rejects      prometheus.Counter
	// groupRefusals counts nodes refused because MaxGroups was reached.
	groupRefusals prometheus.Counter
	pushDelay     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rosen_xds_connected_proxies",
			Help: "xDS streams open, by proxy kind (router, sidecar, proxyless).",
		}, []string{"kind"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rosen_xds_pushes_total",
			Help: "xDS responses sent, by resource type.",
		}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rosen_xds_nacks_total",
			Help: "xDS responses rejected by a proxy (each nonce counted once), by resource type.",
		}, []string{"type"}),
		translations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rosen_xds_translations_total",
			Help: "Translations run for a proxy group: full (every resource) or endpoints (EDS only).",
		}, []string{"mode"}),
		translateDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rosen_xds_translation_duration_seconds",
			Help:    "Time to translate and validate the configuration of one proxy group.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"mode"}),
		pushDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rosen_xds_push_delay_seconds",
			Help:    "Time from publishing a change to sending it on a stream (one observation per stream and response).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		rejects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rosen_xds_config_rejects_total",
			Help: "Meshes rejected by the validation gate (the last good configuration stayed in force).",
		}),
		groupRefusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rosen_xds_group_refusals_total",
			Help: "Nodes refused because the number of proxy groups reached its limit.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.connected, m.pushes, m.nacks, m.translations, m.translateDur, m.rejects, m.pushDelay, m.groupRefusals)
	}
	return m
}
