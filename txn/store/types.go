// Package store keeps TCC global transactions and their branches durably, in
// SQLite (embedded default) or PostgreSQL (shared by any number of coordinator
// replicas). Every method returns only after its change is committed.
package store

import (
	"context"
	"errors"
	"time"
)

// State is where a global transaction is in its life.
type State string

// States of a global transaction. Trying, Confirming and Cancelling are
// active (the coordinator has work to do); Committed and Aborted are final;
// Stuck is a phase two that ran out of retries: it stays visible and waits
// for an operator's retry.
const (
	Trying     State = "trying"
	Confirming State = "confirming"
	Cancelling State = "cancelling"
	Committed  State = "committed"
	Aborted    State = "aborted"
	Stuck      State = "stuck"
)

// Final reports whether no more work will ever be done for the state.
func (s State) Final() bool { return s == Committed || s == Aborted }

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	switch s {
	case Trying, Confirming, Cancelling, Committed, Aborted, Stuck:
		return true
	}
	return false
}

// BranchState is where one branch is in phase two.
type BranchState string

// Branch states.
const (
	BranchRegistered BranchState = "registered"
	BranchConfirmed  BranchState = "confirmed"
	BranchCancelled  BranchState = "cancelled"
	BranchFailed     BranchState = "failed" // the participant answered "failed for good"
)

// Action is one participant endpoint called in phase two.
type Action struct {
	URL    string `json:"url"`
	Method string `json:"method,omitempty"` // HTTP method; POST when empty
	Body   []byte `json:"body,omitempty"`
}

// Branch is one participant's part of a global transaction.
type Branch struct {
	ID        string      `json:"branch_id"`
	Confirm   Action      `json:"confirm"`
	Cancel    Action      `json:"cancel"`
	State     BranchState `json:"state"`
	Attempts  int         `json:"attempts"`
	LastError string      `json:"last_error,omitempty"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// Policy bounds phase-two retries: exponential backoff from Initial, doubled
// per attempt up to Max, for at most Limit attempts before the transaction is
// marked stuck.
type Policy struct {
	Initial time.Duration `json:"initial"`
	Max     time.Duration `json:"max"`
	Limit   int           `json:"limit"`
}

// Txn is a global transaction.
type Txn struct {
	ID         string            `json:"id"`
	State      State             `json:"state"`
	StuckPhase State             `json:"stuck_phase,omitempty"` // Confirming or Cancelling, when State is Stuck
	Reason     string            `json:"reason,omitempty"`      // why it was aborted (request, timeout)
	Policy     Policy            `json:"policy"`
	Headers    map[string]string `json:"headers,omitempty"` // sent with every branch call
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	Deadline   time.Time         `json:"deadline"`
	FinishedAt time.Time         `json:"finished_at,omitzero"`
	NextDue    time.Time         `json:"next_due"`
	Owner      string            `json:"owner,omitempty"`
	LeaseUntil time.Time         `json:"lease_until,omitzero"`
	Attempts   int               `json:"attempts"`
	LastError  string            `json:"last_error,omitempty"`
	Branches   []Branch          `json:"branches"`
}

// Transition is a compare-and-set of a transaction's state.
type Transition struct {
	From []State
	To   State
	Now  time.Time
	// BeforeDeadline / AfterDeadline add "deadline > Now" / "deadline <= Now" to the condition.
	BeforeDeadline bool
	AfterDeadline  bool
	// Owner and LeaseUntil claim the transaction for the caller (empty Owner releases it).
	Owner      string
	LeaseUntil time.Time
	NextDue    time.Time
	Reason     string
	// ResetAttempts starts the retry count again (an operator's retry of a stuck transaction).
	ResetAttempts bool
}

// Progress is what one phase-two round wrote: branch outcomes and the
// transaction's next state, saved in one database transaction by the owner.
type Progress struct {
	Owner     string
	From      State // the state the round ran in
	To        State // same as From to retry later; Committed, Aborted or Stuck to end
	Now       time.Time
	NextDue   time.Time
	Attempts  int
	LastError string
	Branches  []Branch // only ID, State, Attempts and LastError are written
}

// Filter selects transactions for List.
type Filter struct {
	State State
	Limit int
}

// Store is the durable state of the coordinator.
type Store interface {
	// Create inserts a transaction in state Trying with its branches (ErrExists if the id was ever used).
	Create(ctx context.Context, t *Txn) error
	// AddBranch registers a branch while the transaction is Trying and before its deadline.
	// Registering the same branch again with the same actions is a no-op.
	AddBranch(ctx context.Context, txnID string, b Branch, now time.Time) error
	// Get returns a transaction with its branches (ErrNotFound).
	Get(ctx context.Context, id string) (*Txn, error)
	// List returns transactions, newest first, without branches.
	List(ctx context.Context, f Filter) ([]*Txn, error)
	// Transition moves a transaction between states if it is in one of tr.From (ErrState otherwise)
	// and returns it as it is after the change.
	Transition(ctx context.Context, id string, tr Transition) (*Txn, error)
	// ClaimDue leases up to limit active transactions whose next due time has come and
	// whose lease has expired, for owner until leaseUntil, and returns their ids.
	ClaimDue(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]string, error)
	// SaveProgress records a phase-two round if owner still holds the transaction in state p.From
	// (ErrLeaseLost otherwise), and releases the lease.
	SaveProgress(ctx context.Context, id string, p Progress) error
	// Purge deletes up to limit committed or aborted transactions (with their
	// branches) that finished at or before before, and returns how many. Active
	// and stuck transactions are never purged. A purged id may be used again.
	Purge(ctx context.Context, before time.Time, limit int) (int, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	Close() error
}

// Errors of the store. Callers match them with errors.Is.
var (
	ErrNotFound        = errors.New("store: transaction not found")
	ErrExists          = errors.New("store: transaction id already used")
	ErrState           = errors.New("store: transaction is not in a state that allows this")
	ErrDuplicateBranch = errors.New("store: branch already registered with other actions")
	ErrLeaseLost       = errors.New("store: lease lost to another coordinator")
	ErrTimedOut        = errors.New("store: transaction is past its deadline")
)
