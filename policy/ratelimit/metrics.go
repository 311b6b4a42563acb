package ratelimit

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	decisions *prometheus.CounterVec // result: ok, over_limit, shadow_over_limit, bad_request, error
	latency   prometheus.Histogram
	reloads   *prometheus.CounterVec // result: ok, error
	// byResult holds the decision counters of the known results, resolved
	// once (WithLabelValues hashes the label on every call).
	byResult map[string]prometheus.Counter
}

func (m *metrics) decision(result string) prometheus.Counter {
	if c, ok := m.byResult[result]; ok {
		return c
	}
	return m.decisions.WithLabelValues(result)
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rosen_ratelimit_decisions_total", Help: "ShouldRateLimit answers by result.",
		}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rosen_ratelimit_decision_seconds",
			Help:    "ShouldRateLimit whole-handler latency.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .01, .1},
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rosen_ratelimit_config_reloads_total", Help: "Rate-limit config reloads by result.",
		}, []string{"result"}),
	}
	m.byResult = map[string]prometheus.Counter{}
	for _, r := range []string{"ok", "over_limit", "shadow_over_limit", "bad_request", "error"} {
		m.byResult[r] = m.decisions.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.latency, m.reloads)
	}
	return m
}
