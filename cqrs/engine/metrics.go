package engine

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	events      *prometheus.CounterVec
	rows        *prometheus.CounterVec
	skipped     *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	exported    *prometheus.CounterVec
	retries     *prometheus.CounterVec
	lag         *prometheus.HistogramVec
	batch       prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rosen_cqrs_events_total",
			Help: "Events matched per rule (event:database.table)."}, []string{"rule"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rosen_cqrs_rows_written_total",
			Help: "Rows upserted or deleted per database."}, []string{"database"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rosen_cqrs_redeliveries_skipped_total",
			Help: "Events at or below their lane's offset (already applied)."}, []string{"database"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rosen_cqrs_dead_letters_total",
			Help: "Events sent to the dead-letter stream, per rule and reason."}, []string{"rule", "reason"}),
		exported: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rosen_cqrs_exported_total",
			Help: "Records confirmed by each exporter."}, []string{"exporter"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rosen_cqrs_retries_total",
			Help: "Retries of a failing step (database, exporter, dead-letter stream, ack)."}, []string{"step"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rosen_cqrs_lag_seconds",
			Help:    "From the event's time to its projection, per rule.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}, []string{"rule"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rosen_cqrs_batch_seconds",
			Help: "Time to process one batch end to end.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.events, m.rows, m.skipped, m.deadLetters, m.exported, m.retries, m.lag, m.batch} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue
			}
			return nil, fmt.Errorf("engine: metrics: %w", err)
		}
	}
	return m, nil
}
