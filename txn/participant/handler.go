package participant

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/rosenmesh/rosen/txn/barrier"
	"github.com/rosenmesh/rosen/txn/coordinator"
)

// ErrRefused is what a business function returns when the request can never
// succeed (insufficient funds, unknown account): the participant answers 409,
// which the caller and the coordinator take as failed for good.
var ErrRefused = errors.New("participant: refused")

// Call is one incoming Try, Confirm or Cancel.
type Call struct {
	Branch  barrier.Branch
	Phase   string
	Payload []byte
	Tried   barrier.TryState // for Cancel: whether its Try committed or only started
}

// Service runs a participant's three phases behind a barrier.
type Service struct {
	Barrier *barrier.Barrier
	Try     func(ctx context.Context, tx *sql.Tx, c Call) error
	Confirm func(ctx context.Context, tx *sql.Tx, c Call) error
	Cancel  func(ctx context.Context, tx *sql.Tx, c Call) error
}

// ServeHTTP reads the protocol headers (Rosen-Txn-Id, Rosen-Branch-Id,
// Rosen-Txn-Phase), runs the phase and answers 200 {"status":"SUCCESS"},
// 409 {"status":"FAILURE"} when it can never succeed, or 500 to be retried.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := Call{
		Branch: barrier.Branch{TxnID: r.Header.Get(coordinator.HeaderTxnID), BranchID: r.Header.Get(coordinator.HeaderBranchID)},
		Phase:  r.Header.Get(coordinator.HeaderPhase),
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		answer(w, http.StatusBadRequest, "FAILURE", err.Error())
		return
	}
	c.Payload = payload
	err = s.run(r.Context(), c)
	switch {
	case err == nil:
		answer(w, http.StatusOK, "SUCCESS", "")
	case errors.Is(err, errUnknownPhase):
		answer(w, http.StatusBadRequest, "FAILURE", err.Error())
	case refused(err):
		answer(w, http.StatusConflict, "FAILURE", err.Error())
	default:
		answer(w, http.StatusInternalServerError, "ONGOING", err.Error())
	}
}

var errUnknownPhase = errors.New("participant: missing or unknown " + coordinator.HeaderPhase + " header")

// run runs c's phase behind the barrier.
func (s *Service) run(ctx context.Context, c Call) error {
	switch c.Phase {
	case coordinator.PhaseTry:
		return s.Barrier.Try(ctx, c.Branch, func(tx *sql.Tx) error { return s.Try(ctx, tx, c) })
	case coordinator.PhaseConfirm:
		return s.Barrier.Confirm(ctx, c.Branch, func(tx *sql.Tx) error { return s.Confirm(ctx, tx, c) })
	case coordinator.PhaseCancel:
		return s.Barrier.Cancel(ctx, c.Branch, func(tx *sql.Tx, tried barrier.TryState) error {
			c.Tried = tried
			return s.Cancel(ctx, tx, c)
		})
	}
	return errUnknownPhase
}

// refused reports whether err means the call can never succeed.
func refused(err error) bool {
	return errors.Is(err, ErrRefused) || errors.Is(err, barrier.ErrHanging) || errors.Is(err, barrier.ErrConflict) ||
		errors.Is(err, barrier.ErrNotTried) || errors.Is(err, barrier.ErrBadInput)
}

func answer(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	body := map[string]string{"status": status}
	if msg != "" {
		body["error"] = msg
	}
	_ = json.NewEncoder(w).Encode(body)
}
