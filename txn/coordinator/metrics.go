package coordinator

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rosenmesh/rosen/txn/store"
)

type metrics struct {
	transitions *prometheus.CounterVec
	calls       *prometheus.CounterVec
	stuckTotal  prometheus.Counter
	webhook     *prometheus.CounterVec
	storeErrs   prometheus.Counter
	duration    *prometheus.HistogramVec
	purged      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rosen_txn_transitions_total",
			Help: "Global transactions that entered each state."}, []string{"state"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rosen_txn_branch_calls_total",
			Help: "Confirm/cancel calls to participants by result (done, failed, retry)."}, []string{"phase", "result"}),
		stuckTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: "rosen_txn_stuck_total",
			Help: "Transactions whose phase two ran out of retries or failed for good (each is alerted)."}),
		webhook: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rosen_txn_alert_webhook_total",
			Help: "Alert webhook deliveries by result."}, []string{"result"}),
		storeErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "rosen_txn_store_errors_total",
			Help: "Store operations that failed (the database did not answer or refused)."}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rosen_txn_duration_seconds",
			Help:    "Time from begin to the final state.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}, []string{"outcome"}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{Name: "rosen_txn_purged_total",
			Help: "Committed and aborted transactions deleted after the retention period."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, col := range []prometheus.Collector{m.transitions, m.calls, m.stuckTotal, m.webhook, m.storeErrs, m.duration, m.purged} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("coordinator: metrics: %w", err)
		}
	}
	return m, nil
}

// storeErrors counts errors that mean the database failed, not the caller's mistakes.
func (m *metrics) storeErrors(err error) {
	if err == nil {
		return
	}
	for _, benign := range []error{store.ErrNotFound, store.ErrExists, store.ErrState, store.ErrDuplicateBranch, store.ErrLeaseLost, store.ErrTimedOut, ErrBadInput} {
		if errors.Is(err, benign) {
			return
		}
	}
	m.storeErrs.Inc()
}
