package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/txn/store"
)

// alerter reports stuck transactions: an error log line, a metric, and an optional webhook.
type alerter struct {
	log     *zap.Logger
	m       *metrics
	webhook atomic.Pointer[string] // SetSettings may change it while stuck() runs
	client  *http.Client
}

func newAlerter(log *zap.Logger, m *metrics, webhook string) *alerter {
	a := &alerter{log: log.Named("alert"), m: m, client: &http.Client{Timeout: 5 * time.Second}}
	a.webhook.Store(&webhook)
	return a
}

// Alert is the JSON body POSTed to the webhook.
type Alert struct {
	Event     string         `json:"event"` // "txn.stuck"
	TxnID     string         `json:"txn_id"`
	Phase     string         `json:"phase"`
	Attempts  int            `json:"attempts"`
	LastError string         `json:"last_error"`
	Branches  []store.Branch `json:"branches"`
	At        time.Time      `json:"at"`
}

func (a *alerter) stuck(ctx context.Context, t *store.Txn, phase string) {
	a.m.stuckTotal.Inc()
	a.log.Error("transaction stuck: phase two needs an operator (POST /api/txn/transactions/"+t.ID+"/retry after fixing the participant)",
		zap.String("txn", t.ID), zap.String("phase", phase), zap.Int("attempts", t.Attempts), zap.String("last_error", t.LastError))
	webhook := *a.webhook.Load()
	if webhook == "" {
		return
	}
	body, _ := json.Marshal(Alert{Event: "txn.stuck", TxnID: t.ID, Phase: phase, Attempts: t.Attempts, LastError: t.LastError, Branches: t.Branches, At: time.Now().UTC()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhook, bytes.NewReader(body))
	if err != nil {
		a.m.webhook.WithLabelValues("error").Inc()
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		a.m.webhook.WithLabelValues("error").Inc()
		a.log.Warn("alert webhook failed", zap.Error(err))
		return
	}
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		a.m.webhook.WithLabelValues("error").Inc()
		a.log.Warn("alert webhook refused", zap.Int("status", resp.StatusCode))
		return
	}
	a.m.webhook.WithLabelValues("ok").Inc()
}

func (a *alerter) close() { a.client.CloseIdleConnections() }
