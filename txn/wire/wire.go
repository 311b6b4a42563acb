// Package wire holds the JSON shapes of the coordinator's API, shared by the
// REST handlers and the gRPC service (which carries the same documents in
// google.protobuf.Struct messages).
package wire

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
)

// Duration is a JSON duration: "1.5s", "200ms" (or a number of milliseconds).
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" { // not set, as encoding/json treats null for other types
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var ms float64
		if err2 := json.Unmarshal(b, &ms); err2 != nil {
			return fmt.Errorf("duration: want \"1.5s\" or milliseconds, got %s", b)
		}
		*d = Duration(time.Duration(ms * float64(time.Millisecond)))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Policy is a retry policy on the wire.
type Policy struct {
	Initial Duration `json:"initial"`
	Max     Duration `json:"max"`
	Limit   int      `json:"limit"`
}

// Begin is the body of POST /api/txn/transactions.
type Begin struct {
	ID       string            `json:"id,omitempty"`
	Timeout  Duration          `json:"timeout,omitempty"`
	Retry    *Policy           `json:"retry,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
	Branches []Branch          `json:"branches,omitempty"`
}

// Branch registers a branch: confirm and cancel URLs (POSTed the payload) or full actions.
type Branch struct {
	ID      string          `json:"branch_id"`
	Confirm string          `json:"confirm,omitempty"`
	Cancel  string          `json:"cancel,omitempty"`
	Method  string          `json:"method,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func (b Branch) Store() store.Branch {
	return store.Branch{ID: b.ID,
		Confirm: store.Action{URL: b.Confirm, Method: b.Method, Body: b.Payload},
		Cancel:  store.Action{URL: b.Cancel, Method: b.Method, Body: b.Payload}}
}

func (b Begin) Request() coordinator.BeginRequest {
	r := coordinator.BeginRequest{ID: b.ID, Timeout: time.Duration(b.Timeout), Headers: b.Headers}
	if b.Retry != nil {
		r.Policy = &store.Policy{Initial: time.Duration(b.Retry.Initial), Max: time.Duration(b.Retry.Max), Limit: b.Retry.Limit}
	}
	for _, br := range b.Branches {
		r.Branches = append(r.Branches, br.Store())
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

// TxnView is a transaction as the API shows it; View makes one.
type TxnView struct {
	ID         string            `json:"id"`
	State      string            `json:"state"`
	StuckPhase string            `json:"stuck_phase,omitempty"`
	Reason     string            `json:"reason,omitempty"`
	Retry      Policy            `json:"retry"`
	Headers    map[string]string `json:"headers,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	Deadline   time.Time         `json:"deadline"`
	FinishedAt *time.Time        `json:"finished_at,omitempty"`
	NextDue    time.Time         `json:"next_due,omitzero"`
	Owner      string            `json:"owner,omitempty"`
	Attempts   int               `json:"attempts"`
	LastError  string            `json:"last_error,omitempty"`
	Branches   []BranchView      `json:"branches,omitempty"`
}

func View(t *store.Txn) TxnView {
	v := TxnView{ID: t.ID, State: string(t.State), StuckPhase: string(t.StuckPhase), Reason: t.Reason,
		Retry:   Policy{Initial: Duration(t.Policy.Initial), Max: Duration(t.Policy.Max), Limit: t.Policy.Limit},
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
