package authz

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	decisions *prometheus.CounterVec   // result: allow, deny, error, bad_input, unauthenticated
	latency   *prometheus.HistogramVec // result
	reloads   *prometheus.CounterVec   // result: ok, error
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rosen_authz_decisions_total", Help: "ext_authz decisions by result.",
		}, []string{"result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rosen_authz_decision_seconds",
			Help:    "ext_authz whole-handler latency per decision.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5},
		}, []string{"result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rosen_authz_policy_reloads_total", Help: "Policy folder reloads by result.",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.latency, m.reloads)
	}
	return m
}
