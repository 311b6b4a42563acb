// Package rest serves the coordinator over HTTP (echo): Rosen's own API under
// /api/txn and Twist's shapes under /api/transactions, so Twist clients move
// over unchanged.
package rest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
)

// duration is a JSON duration: "1.5s", "200ms" (or a number of milliseconds).
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var ms float64
		if err2 := json.Unmarshal(b, &ms); err2 != nil {
			return fmt.Errorf("duration: want \"1.5s\" or milliseconds, got %s", b)
		}
		*d = duration(time.Duration(ms * float64(time.Millisecond)))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = duration(v)
	return nil
}

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// PolicyJSON is a retry policy on the wire.
type PolicyJSON struct {
	Initial duration `json:"initial"`
	Max     duration `json:"max"`
	Limit   int      `json:"limit"`
}

// BeginJSON is the body of POST /api/txn/transactions.
type BeginJSON struct {
	ID       string            `json:"id,omitempty"`
	Timeout  duration          `json:"timeout,omitempty"`
	Retry    *PolicyJSON       `json:"retry,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
	Branches []BranchJSON      `json:"branches,omitempty"`
}

// BranchJSON registers a branch: confirm and cancel URLs (POSTed the payload) or full actions.
type BranchJSON struct {
	ID      string          `json:"branch_id"`
	Confirm string          `json:"confirm,omitempty"`
	Cancel  string          `json:"cancel,omitempty"`
	Method  string          `json:"method,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func (b BranchJSON) branch() store.Branch {
	return store.Branch{ID: b.ID,
		Confirm: store.Action{URL: b.Confirm, Method: b.Method, Body: b.Payload},
		Cancel:  store.Action{URL: b.Cancel, Method: b.Method, Body: b.Payload}}
}

func (b BeginJSON) request() coordinator.BeginRequest {
	r := coordinator.BeginRequest{ID: b.ID, Timeout: time.Duration(b.Timeout), Headers: b.Headers}
	if b.Retry != nil {
		r.Policy = &store.Policy{Initial: time.Duration(b.Retry.Initial), Max: time.Duration(b.Retry.Max), Limit: b.Retry.Limit}
	}
	for _, br := range b.Branches {
		r.Branches = append(r.Branches, br.branch())
	}
	return r
}

// ActionView shows an action; a JSON body is shown as JSON, any other as text.
type ActionView struct {
	URL    string          `json:"url,omitempty"`
	Method string          `json:"method,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
}

func actionView(a store.Action) ActionView {
	v := ActionView{URL: a.URL, Method: a.Method}
	if len(a.Body) > 0 {
		if json.Valid(a.Body) {
			v.Body = a.Body
		} else {
			v.Body, _ = json.Marshal(string(a.Body))
		}
	}
	return v
}

// BranchView is a branch as the API shows it.
type BranchView struct {
	ID        string     `json:"branch_id"`
	State     string     `json:"state"`
	Confirm   ActionView `json:"confirm"`
	Cancel    ActionView `json:"cancel"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// TxnView is a transaction as the API shows it.
type TxnView struct {
	ID         string            `json:"id"`
	State      string            `json:"state"`
	StuckPhase string            `json:"stuck_phase,omitempty"`
	Reason     string            `json:"reason,omitempty"`
	Retry      PolicyJSON        `json:"retry"`
	Headers    map[string]string `json:"headers,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	Deadline   time.Time         `json:"deadline"`
	FinishedAt *time.Time        `json:"finished_at,omitempty"`
	NextDue    time.Time         `json:"next_due"`
	Owner      string            `json:"owner,omitempty"`
	Attempts   int               `json:"attempts"`
	LastError  string            `json:"last_error,omitempty"`
	Branches   []BranchView      `json:"branches,omitempty"`
}

func txnView(t *store.Txn) TxnView {
	v := TxnView{ID: t.ID, State: string(t.State), StuckPhase: string(t.StuckPhase), Reason: t.Reason,
		Retry:   PolicyJSON{Initial: duration(t.Policy.Initial), Max: duration(t.Policy.Max), Limit: t.Policy.Limit},
		Headers: t.Headers, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, Deadline: t.Deadline, NextDue: t.NextDue,
		Owner: t.Owner, Attempts: t.Attempts, LastError: t.LastError}
	if !t.FinishedAt.IsZero() {
		f := t.FinishedAt
		v.FinishedAt = &f
	}
	for _, b := range t.Branches {
		v.Branches = append(v.Branches, BranchView{ID: b.ID, State: string(b.State), Confirm: actionView(b.Confirm),
			Cancel: actionView(b.Cancel), Attempts: b.Attempts, LastError: b.LastError, UpdatedAt: b.UpdatedAt})
	}
	return v
}
