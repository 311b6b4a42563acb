package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/cqrs/sink"

	"github.com/rosenmesh/rosen/cqrs/engine"
)

// ErrUnknownView is a replay of a view no rule feeds.
var ErrUnknownView = errors.New("service: unknown view")

// ReplayResult says what a replay did.
type ReplayResult struct {
	View      string    `json:"view"`
	From      uint64    `json:"from,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	UpTo      uint64    `json:"upTo"`
	Events    uint64    `json:"events"`
	Truncated bool      `json:"truncated"`
	Took      string    `json:"took"`
}

// ParseFrom reads --from: a stream sequence or an RFC 3339 time.
func ParseFrom(s string) (uint64, time.Time, error) {
	if s == "" {
		return 1, time.Time{}, nil
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n, time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: --from %q is neither a sequence nor an RFC 3339 time", ErrConfig, s)
	}
	return 0, t, nil
}

// Replay rebuilds a view from the event store: its watermarks are cleared
// (and its rows too when replaying from the beginning), then the events from
// `from` (or `since`) up to the store's current end are folded in again.
// Live consumers pause for the duration and resume where they were; nothing
// is lost. A newly added rule is backfilled the same way.
func (s *Service) Replay(ctx context.Context, view string, from uint64, since time.Time) (ReplayResult, error) {
	return s.replay(ctx, view, from, since, nil)
}

// ReplayFromSnapshot restores the view's last snapshot in every database
// and replays the event store after it (watermarks skip what it holds).
func (s *Service) ReplayFromSnapshot(ctx context.Context, view string) (ReplayResult, error) {
	return s.replay(ctx, view, 0, time.Time{}, func(r *rules.Rule) (uint64, error) {
		return sink.RestoreView(ctx, s.sinks[r.Database].Store, view, r.Table)
	})
}

// Snapshot copies the view in every database it lives in. The copy holds
// every event up to the lowest acknowledged sequence of the partitions'
// consumers, read before the copy starts.
func (s *Service) Snapshot(ctx context.Context, view string) (uint64, error) {
	floor, err := s.store.AckFloor(ctx, s.store.Config().Partitions)
	if err != nil {
		return 0, err
	}
	found := false
	for _, r := range s.cfg.Rules {
		if r.ViewName() != view {
			continue
		}
		found = true
		if err := sink.SnapshotView(ctx, s.sinks[r.Database].Store, view, r.Table, floor); err != nil {
			return 0, fmt.Errorf("snapshot %s in %s: %w", view, r.Database, err)
		}
	}
	if !found {
		return 0, fmt.Errorf("%w %q", ErrUnknownView, view)
	}
	return floor, nil
}

// replay resets the view (restore nil: clear watermarks, truncate from the
// start) or restores it from a snapshot, then folds the event store in again.
func (s *Service) replay(ctx context.Context, view string, from uint64, since time.Time, restore func(*rules.Rule) (uint64, error)) (ReplayResult, error) {
	res := ReplayResult{View: view, From: from, Since: since}
	start := time.Now()
	var eng *engine.Engine
	eng, err := s.newEngine([]string{view}, nil)
	if err != nil {
		return res, fmt.Errorf("%w %q: %w", ErrUnknownView, view, err)
	}
	s.gate.Lock()
	defer s.gate.Unlock()
	upTo, err := s.store.LastSeq(ctx)
	if err != nil {
		return res, err
	}
	res.UpTo = upTo
	res.Truncated = from <= 1 && since.IsZero()
	reset := map[string]bool{}
	for _, r := range s.cfg.Rules {
		k := r.Database + "\x00" + r.ViewName()
		if r.ViewName() != view || reset[k] {
			continue
		}
		reset[k] = true
		if restore != nil {
			seq, err := restore(r)
			if err != nil {
				return res, fmt.Errorf("restore %s in %s: %w", view, r.Database, err)
			}
			if res.From == 0 || seq+1 < res.From {
				res.From = seq + 1
			}
			res.Truncated = false
			continue
		}
		if err := s.sinks[r.Database].Store.ResetView(ctx, view, r.Table, res.Truncated); err != nil {
			return res, fmt.Errorf("reset %s in %s: %w", view, r.Database, err)
		}
	}
	from = res.From
	if upTo == 0 || from > upTo {
		return res, nil
	}
	src, err := s.store.Replay(ctx, from, since)
	if err != nil {
		return res, err
	}
	defer src.Close()
	for {
		// The events up to upTo are stored already: a quiet second means
		// there are none left after `since`.
		nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		b, err := src.Next(nctx, 5000)
		cancel()
		if err != nil && ctx.Err() == nil && nctx.Err() != nil {
			break
		}
		if err != nil {
			return res, fmt.Errorf("replay %s: %w", view, err)
		}
		if err := eng.Process(ctx, b.Msgs); err != nil {
			return res, err
		}
		res.Events += uint64(len(b.Msgs))
		if b.Msgs[len(b.Msgs)-1].Seq >= upTo {
			break
		}
	}
	took := time.Since(start)
	res.Took = took.Round(time.Millisecond).String()
	s.log.Info("replayed view", zap.String("view", view), zap.Uint64("events", res.Events), zap.Duration("took", took))
	return res, nil
}
