package authz

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// results are the decision result labels.
var results = []string{"allow", "deny", "error", "bad_input", "unauthenticated"}

type metrics struct {
	decisions *prometheus.CounterVec   // result: see results
	latency   *prometheus.HistogramVec // result
	reloads   *prometheus.CounterVec   // result: ok, error
	// byResult holds each result's children, resolved once rather than
	// hashed per decision.
	byResult map[string]resultMetrics
}

type resultMetrics struct {
	decisions prometheus.Counter
	latency   prometheus.Observer
}

func (m *metrics) observe(result string, d time.Duration) {
	r, ok := m.byResult[result]
	if !ok {
		r = resultMetrics{m.decisions.WithLabelValues(result), m.latency.WithLabelValues(result)}
	}
	r.decisions.Inc()
	r.latency.Observe(d.Seconds())
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
	m.byResult = make(map[string]resultMetrics, len(results))
	for _, r := range results {
		m.byResult[r] = resultMetrics{m.decisions.WithLabelValues(r), m.latency.WithLabelValues(r)}
	}
	return m
}
