package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/txn/store"
)

// Commit moves a trying transaction to confirming (committed to the store
// before it returns) and starts phase two here. A transaction already
// confirming or committed is a successful no-op; one past its deadline is
// aborted and ErrTimedOut returned; one being cancelled gives ErrState. With
// wait > 0 it waits that long for the outcome and returns the latest state.
func (c *Coordinator) Commit(ctx context.Context, id string, wait time.Duration) (*store.Txn, error) {
	return c.finish(ctx, id, store.Confirming, "", wait)
}

// Abort moves a trying transaction to cancelling and starts phase two here.
func (c *Coordinator) Abort(ctx context.Context, id, reason string, wait time.Duration) (*store.Txn, error) {
	if reason == "" {
		reason = "aborted by request"
	}
	return c.finish(ctx, id, store.Cancelling, reason, wait)
}

func (c *Coordinator) finish(ctx context.Context, id string, to store.State, reason string, wait time.Duration) (*store.Txn, error) {
	if err := checkID("transaction id", id); err != nil {
		return nil, err
	}
	now := c.opts.Now().UTC()
	tr := store.Transition{From: []store.State{store.Trying}, To: to, Now: now, Reason: reason,
		Owner: c.opts.Owner, LeaseUntil: now.Add(c.opts.Lease), NextDue: now, BeforeDeadline: to == store.Confirming}
	t, err := c.opts.Store.Transition(ctx, id, tr)
	switch {
	case err == nil:
		c.m.transitions.WithLabelValues(string(to)).Inc()
		var ch chan *store.Txn
		if wait > 0 {
			ch = c.subscribe(id) // before the round starts, so its outcome cannot be missed
		}
		c.launch(t)
		return c.waitFor(ctx, id, wait, nil, t, ch)
	case errors.Is(err, store.ErrTimedOut):
		// Too late to commit: the transaction is aborted, as the coordinator would on its own.
		if _, aerr := c.Abort(ctx, id, "timed out before commit", 0); aerr != nil && !errors.Is(aerr, store.ErrState) {
			return t, aerr
		}
		return c.waitResult(ctx, id, wait, err)
	case errors.Is(err, store.ErrState) && t != nil && sameOutcome(t.State, t.StuckPhase, to):
		// Asked again (a retried request): report the state, do not fail.
	default:
		c.m.storeErrors(err)
		return t, err
	}
	return c.waitResult(ctx, id, wait, nil)
}

func sameOutcome(s, stuckPhase, to store.State) bool {
	if to == store.Confirming {
		return s == store.Confirming || s == store.Committed || (s == store.Stuck && stuckPhase == store.Confirming)
	}
	return s == store.Cancelling || s == store.Aborted || (s == store.Stuck && stuckPhase == store.Cancelling)
}

// Retry restarts phase two of a stuck transaction with a fresh retry count.
func (c *Coordinator) Retry(ctx context.Context, id string, wait time.Duration) (*store.Txn, error) {
	t, err := c.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.State != store.Stuck {
		return t, fmt.Errorf("%w: %s is %s, not stuck", store.ErrState, id, t.State)
	}
	now := c.opts.Now().UTC()
	t, err = c.opts.Store.Transition(ctx, id, store.Transition{From: []store.State{store.Stuck}, To: t.StuckPhase, Now: now,
		Owner: c.opts.Owner, LeaseUntil: now.Add(c.opts.Lease), NextDue: now, ResetAttempts: true})
	if err != nil {
		return t, err
	}
	c.log.Info("stuck transaction retried by request", zap.String("txn", id), zap.String("phase", string(t.State)))
	var ch chan *store.Txn
	if wait > 0 {
		ch = c.subscribe(id)
	}
	c.launch(t)
	return c.waitFor(ctx, id, wait, nil, t, ch)
}

// waitResult waits up to d for the transaction to end (final or stuck) and returns it with err.
func (c *Coordinator) waitResult(ctx context.Context, id string, d time.Duration, err error) (*store.Txn, error) {
	return c.waitFor(ctx, id, d, err, nil, nil)
}

// waitFor is waitResult starting from a known state t and an open subscription ch (both optional).
func (c *Coordinator) waitFor(ctx context.Context, id string, d time.Duration, err error, t *store.Txn, ch chan *store.Txn) (*store.Txn, error) {
	if d <= 0 {
		if ch != nil {
			c.unsubscribe(id, ch)
		}
		if t != nil {
			return t, err
		}
		t, gerr := c.opts.Store.Get(ctx, id)
		if gerr != nil {
			return nil, gerr
		}
		return t, err
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	// Another replica may finish it: look at the store now and then, besides our own notices.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if ch == nil {
			ch = c.subscribe(id)
			t = nil
		}
		if t == nil {
			var gerr error
			if t, gerr = c.opts.Store.Get(ctx, id); gerr != nil {
				c.unsubscribe(id, ch)
				return nil, gerr
			}
		}
		if t.State.Final() || t.State == store.Stuck {
			c.unsubscribe(id, ch)
			return t, err
		}
		select {
		case nt := <-ch:
			if nt != nil && (nt.State.Final() || nt.State == store.Stuck) {
				return nt, err // the round's recorded outcome: no need to read it back
			}
			t, ch = nil, nil // no outcome recorded, or phase two goes on: read the store
		case <-tick.C:
			c.unsubscribe(id, ch)
			t, ch = nil, nil
		case <-timer.C:
			c.unsubscribe(id, ch)
			if nt, gerr := c.opts.Store.Get(ctx, id); gerr == nil {
				t = nt
			}
			return t, err
		case <-ctx.Done():
			c.unsubscribe(id, ch)
			return t, err
		case <-c.base.Done():
			c.unsubscribe(id, ch)
			return t, ErrClosed
		}
	}
}

func (c *Coordinator) subscribe(id string) chan *store.Txn {
	ch := make(chan *store.Txn, 1)
	c.mu.Lock()
	c.waiters[id] = append(c.waiters[id], ch)
	c.mu.Unlock()
	return ch
}

func (c *Coordinator) unsubscribe(id string, ch chan *store.Txn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.waiters[id]
	for i, w := range list {
		if w == ch {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(c.waiters, id)
	} else {
		c.waiters[id] = list
	}
}

// notify hands the outcome of a round (nil when none was recorded) to the waiters of id.
func (c *Coordinator) notify(id string, t *store.Txn) {
	c.mu.Lock()
	list := c.waiters[id]
	delete(c.waiters, id)
	c.mu.Unlock()
	for _, ch := range list {
		ch <- t // buffered: never blocks
	}
}
