package coordinator_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
)

var traceRe = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`)

func TestCommitConfirmsEveryBranchWithProtocolHeaders(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		c, _ := start(t, s, nil)
		a, b := newParticipant(t, nil), newParticipant(t, nil)
		ctx := context.Background()
		tx, err := c.Begin(ctx, coordinator.BeginRequest{ID: "pay-1", Headers: map[string]string{"X-Tenant": "acme"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Register(ctx, tx.ID, a.branch("out")); err != nil {
			t.Fatal(err)
		}
		if err := c.Register(ctx, tx.ID, b.branch("in")); err != nil {
			t.Fatal(err)
		}
		got, err := c.Commit(ctx, tx.ID, 30*time.Second)
		if err != nil || got.State != store.Committed {
			t.Fatalf("commit: %v %+v", err, got)
		}
		for _, br := range got.Branches {
			if br.State != store.BranchConfirmed || br.Attempts != 1 {
				t.Fatalf("branch %+v", br)
			}
		}
		for _, p := range []*participant{a, b} {
			if ph := p.phases("pay-1"); ph["confirm"] != 1 || ph["cancel"] != 0 {
				t.Fatalf("calls %v", ph)
			}
			cl := p.calls[0]
			if !traceRe.MatchString(cl.Trace) || cl.Tenant != "acme" || cl.Body != `{"amount":5}` || cl.Branch == "" {
				t.Fatalf("call %+v", cl)
			}
		}
		// Both calls of one transaction join one trace.
		if a.calls[0].Trace[3:35] != b.calls[0].Trace[3:35] {
			t.Fatalf("traces differ: %s %s", a.calls[0].Trace, b.calls[0].Trace)
		}
		// Commit again: the same answer, no new calls.
		if again, err := c.Commit(ctx, tx.ID, time.Second); err != nil || again.State != store.Committed || len(a.calls) != 1 {
			t.Fatalf("second commit: %v %+v", err, again)
		}
	})
}

func TestAbortCancelsAndBadRequestsAreRefused(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		c, _ := start(t, s, nil)
		a := newParticipant(t, nil)
		ctx := context.Background()
		tx, _ := c.Begin(ctx, coordinator.BeginRequest{ID: "ab-1", Branches: []store.Branch{a.branch("x")}})
		got, err := c.Abort(ctx, tx.ID, "", 30*time.Second)
		if err != nil || got.State != store.Aborted || got.Reason != "aborted by request" {
			t.Fatalf("abort: %v %+v", err, got)
		}
		if ph := a.phases("ab-1"); ph["cancel"] != 1 || ph["confirm"] != 0 {
			t.Fatalf("calls %v", ph)
		}
		if _, err := c.Commit(ctx, tx.ID, 0); !errors.Is(err, store.ErrState) {
			t.Fatalf("commit after abort: %v", err)
		}
		if err := c.Register(ctx, tx.ID, a.branch("y")); !errors.Is(err, store.ErrState) {
			t.Fatalf("register after abort: %v", err)
		}
		// The id of a finished transaction is never reused: a late retry of Begin cannot revive it.
		if _, err := c.Begin(ctx, coordinator.BeginRequest{ID: "ab-1"}); !errors.Is(err, store.ErrExists) {
			t.Fatalf("reused id: %v", err)
		}
		if _, err := c.Get(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
		if _, err := c.Commit(ctx, "missing", 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("commit unknown: %v", err)
		}
		bad := []coordinator.BeginRequest{
			{ID: "has space"}, {ID: strings.Repeat("x", 200)}, {Timeout: -time.Second}, {Timeout: 48 * time.Hour},
			{Policy: &store.Policy{}}, {Headers: map[string]string{"Rosen-Txn-Id": "forged"}},
			{Branches: []store.Branch{{ID: "b", Confirm: store.Action{URL: "ftp://x"}}}},
			{Branches: []store.Branch{{ID: "b"}}},
			{Branches: []store.Branch{a.branch("d"), a.branch("d")}},
		}
		for i, r := range bad {
			if _, err := c.Begin(ctx, r); !errors.Is(err, coordinator.ErrBadInput) {
				t.Errorf("bad request %d accepted: %v", i, err)
			}
		}
	})
}

func TestTimeoutAbortsByTheCoordinator(t *testing.T) {
	stores(t, func(t *testing.T, s store.Store) {
		c, reg := start(t, s, nil)
		a := newParticipant(t, nil)
		ctx := context.Background()
		tx, _ := c.Begin(ctx, coordinator.BeginRequest{ID: "to-1", Timeout: 50 * time.Millisecond, Branches: []store.Branch{a.branch("x")}})
		got := eventually(t, c, tx.ID, func(x *store.Txn) bool { return x.State == store.Aborted })
		if !strings.HasPrefix(got.Reason, "timed out") || a.phases("to-1")["cancel"] != 1 {
			t.Fatalf("%+v %v", got, a.phases("to-1"))
		}
		if _, err := c.Commit(ctx, tx.ID, 0); !errors.Is(err, store.ErrState) {
			t.Fatalf("commit after timeout: %v", err)
		}
		waitMetric(t, reg, "rosen_txn_transitions_total", "aborted", 1)
	})
}
