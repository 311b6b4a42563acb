package coordinator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/txn/store"
)

// launch runs phase two of t in the background (tracked, so Close waits for
// it). At most one round per transaction runs in this process at a time; a
// launch while one runs makes that round run once more with fresh state.
func (c *Coordinator) launch(t *store.Txn) {
	c.start(t.ID, func() (*store.Txn, error) { return t, nil })
}

// launchID is launch for a transaction known by id (claimed due work at
// claimedAt): it is read from the store only once no other round for it runs
// here, so that a round which ended meanwhile cannot leave it a stale state
// to act on again.
//
// A transaction moved to confirming or cancelling after the claim (a commit
// or abort here: a transition sets updated_at, a claim does not) is left to
// the launch that follows that transition. Running it here as well would run
// phase two twice when this round ends before that launch starts, as that
// launch then acts on the state its transition returned (found by a test
// with a 1 ms poll: every branch cancelled twice).
func (c *Coordinator) launchID(id string, claimedAt time.Time) {
	c.start(id, func() (*store.Txn, error) {
		t, err := c.opts.Store.Get(c.base, id)
		c.m.storeErrors(err)
		if err == nil && t.State != store.Trying && t.UpdatedAt.After(claimedAt) {
			return nil, errLaunchedElsewhere
		}
		return t, err
	})
}

// errLaunchedElsewhere: the transaction's own launch drives this round.
var errLaunchedElsewhere = errors.New("coordinator: transition after the claim; its launch runs phase two")

func (c *Coordinator) start(id string, load func() (*store.Txn, error)) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return // the lease runs out and another replica (or our restart) takes it
	}
	if _, running := c.running[id]; running {
		c.running[id] = true
		c.mu.Unlock()
		return
	}
	c.running[id] = false
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		t, err := load()
		if err != nil {
			c.mu.Lock()
			delete(c.running, id)
			c.mu.Unlock()
			c.notify(id, nil)
			return
		}
		var last *store.Txn
		for {
			last = c.round(c.base, t)
			c.mu.Lock()
			again := c.running[t.ID]
			if !again || c.closed {
				delete(c.running, t.ID)
				c.mu.Unlock()
				break
			}
			c.running[t.ID] = false
			c.mu.Unlock()
			fresh, err := c.opts.Store.Get(c.base, t.ID)
			if err != nil {
				c.mu.Lock()
				delete(c.running, t.ID)
				c.mu.Unlock()
				break
			}
			t = fresh
		}
		c.notify(t.ID, last)
	}()
}

// round calls every unfinished branch once and records the outcome: the final
// state, a later retry with backoff, or stuck (with an alert). It returns the
// transaction as recorded, or nil when nothing was recorded.
func (c *Coordinator) round(ctx context.Context, t *store.Txn) *store.Txn {
	log := c.log.With(zap.String("txn", t.ID))
	if t.State == store.Trying {
		// Claimed because its deadline passed: abort it (unless a commit won the race).
		now := c.opts.Now().UTC()
		nt, err := c.opts.Store.Transition(ctx, t.ID, store.Transition{From: []store.State{store.Trying}, To: store.Cancelling,
			Now: now, AfterDeadline: true, Reason: fmt.Sprintf("timed out after %s", t.Deadline.Sub(t.CreatedAt).Round(time.Millisecond)),
			Owner: c.opts.Owner, LeaseUntil: now.Add(c.opts.Lease), NextDue: now})
		switch {
		case err == nil:
			c.m.transitions.WithLabelValues(string(store.Cancelling)).Inc()
			log.Info("transaction timed out: cancelling")
		case errors.Is(err, store.ErrState) && nt != nil:
			// A commit or abort got there first. Its own launch drives phase two:
			// here, after this round (as a second run of it) when it came while
			// this round ran, or on another replica. Carrying on here too would
			// run phase two twice when that launch comes just after this round.
			return nil
		default:
			log.Warn("timeout abort not recorded; retried after the lease", zap.Error(err))
			return nil
		}
		t = nt
	}
	if t.Owner != c.opts.Owner {
		return nil // another replica holds it now
	}
	phase, done := PhaseConfirm, store.BranchConfirmed
	if t.State == store.Cancelling {
		phase, done = PhaseCancel, store.BranchCancelled
	} else if t.State != store.Confirming {
		return t
	}

	branches := make([]store.Branch, len(t.Branches))
	copy(branches, t.Branches)
	outcomes := make([]Outcome, len(branches))
	call := func(i int) {
		outcomes[i] = c.opts.Caller.Call(ctx, t, &branches[i], phase)
		c.m.calls.WithLabelValues(phase, outcomes[i].Result.String()).Inc()
	}
	// Every branch is called at once: all but the last to call in goroutines
	// of their own, the last in this one.
	last := -1
	var wg sync.WaitGroup
	for i := range branches {
		if branches[i].State == done {
			outcomes[i] = Outcome{Result: Done}
			continue
		}
		if last >= 0 {
			prev := last
			wg.Go(func() { call(prev) })
		}
		last = i
	}
	if last >= 0 {
		call(last)
	}
	wg.Wait()

	now := c.opts.Now().UTC()
	p := store.Progress{Owner: c.opts.Owner, From: t.State, To: t.State, Now: now, Attempts: t.Attempts + 1}
	var failed, retry []string
	for i := range branches {
		b := &branches[i]
		if b.State == done {
			continue
		}
		o := outcomes[i]
		b.Attempts++
		b.LastError = o.Detail
		switch o.Result {
		case Done:
			b.State, b.LastError = done, ""
		case Failed:
			b.State = store.BranchFailed
			failed = append(failed, b.ID+": "+o.Detail)
		case Retry:
			retry = append(retry, b.ID+": "+o.Detail)
		}
		p.Branches = append(p.Branches, *b)
	}
	switch {
	case len(failed) > 0:
		p.To, p.LastError = store.Stuck, "failed for good: "+strings.Join(failed, "; ")
	case len(retry) == 0:
		p.To = store.Committed
		if t.State == store.Cancelling {
			p.To = store.Aborted
		}
	case p.Attempts >= t.Policy.Limit:
		p.To, p.LastError = store.Stuck, fmt.Sprintf("gave up after %d attempts: %s", p.Attempts, strings.Join(retry, "; "))
	default:
		p.LastError = strings.Join(retry, "; ")
		p.NextDue = now.Add(backoff(t.Policy, p.Attempts))
	}
	if err := c.opts.Store.SaveProgress(ctx, t.ID, p); err != nil {
		c.m.storeErrors(err)
		if errors.Is(err, store.ErrLeaseLost) {
			log.Warn("another coordinator took this transaction over; its outcome stands", zap.Error(err))
		} else {
			// Nothing is lost: the lease runs out and the round is run again (participants are idempotent).
			log.Error("phase-two outcome not recorded; will be retried after the lease", zap.Error(err))
		}
		return nil
	}
	c.m.transitions.WithLabelValues(string(p.To)).Inc()
	saved := *t
	saved.State, saved.Attempts, saved.LastError, saved.Branches = p.To, p.Attempts, p.LastError, mergeBranches(t.Branches, p.Branches)
	saved.UpdatedAt, saved.NextDue, saved.Owner, saved.LeaseUntil = now, p.NextDue, "", time.Time{}
	switch p.To {
	case store.Committed, store.Aborted:
		saved.FinishedAt = now
		c.m.duration.WithLabelValues(string(p.To)).Observe(now.Sub(t.CreatedAt).Seconds())
	case store.Stuck:
		saved.StuckPhase = t.State
		c.alert.stuck(ctx, &saved, phase)
	default:
		log.Debug("phase two will be retried", zap.String("phase", phase), zap.Int("attempt", p.Attempts),
			zap.Time("next", p.NextDue), zap.String("error", p.LastError))
	}
	return &saved
}

func mergeBranches(all, changed []store.Branch) []store.Branch {
	out := make([]store.Branch, len(all))
	copy(out, all)
	for _, b := range changed {
		for i := range out {
			if out[i].ID == b.ID {
				out[i] = b
			}
		}
	}
	return out
}

// backoff is Initial·2^(attempt-1), capped at Max, with ±20 % jitter so that
// many transactions failing together do not retry in lockstep.
func backoff(p store.Policy, attempt int) time.Duration {
	d := p.Initial
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	jitter := time.Duration(float64(d) * 0.2 * (2*rand.Float64() - 1))
	return max(d+jitter, time.Millisecond)
}

// Run claims due work (timed-out transactions, phase-two retries, work left by
// a replica that died) until ctx is done, then stops every round in flight.
func (c *Coordinator) Run(ctx context.Context) error {
	defer c.Close()
	tick := time.NewTicker(c.opts.Poll)
	defer tick.Stop()
	c.wg.Go(func() { c.purgeLoop(ctx) }) // idle while retention is off (SetSettings may turn it on)
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := c.opts.Now().UTC()
		ids, err := c.opts.Store.ClaimDue(ctx, c.opts.Owner, now, now.Add(c.opts.Lease), c.opts.Batch)
		if err != nil {
			c.m.storeErrors(err)
			if !failing && ctx.Err() == nil {
				c.log.Error("cannot claim due work; retrying", zap.Error(err))
			}
			failing = true
			continue
		}
		if failing {
			c.log.Info("store answers again")
			failing = false
		}
		for _, id := range ids {
			c.launchID(id, now)
		}
	}
}

// Close stops rounds in flight and waits for them; leased work is taken over
// by another replica (or this one after a restart) when the lease runs out.
func (c *Coordinator) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	switch cl := c.opts.Caller.(type) {
	case *HTTPCaller:
		cl.CloseIdle()
	case interface{ Close() }:
		cl.Close()
	}
	c.alert.close()
}
