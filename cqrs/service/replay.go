package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/cqrs/engine"
	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/cqrs/sink"
	"github.com/rosenmesh/rosen/cqrs/source"
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

// Replay rebuilds a view from the event store without stopping live
// traffic: in PostgreSQL and MySQL the view is rebuilt in a shadow table
// (from nothing when from is the start, else from a copy of the live view
// with the events from `from` or `since` folded in again) and swapped in
// atomically; live events keep flowing into the view meanwhile and wait only
// for the swap. SQLite (one connection) pauses the live consumers instead.
// A newly added rule is backfilled the same way.
func (s *Service) Replay(ctx context.Context, view string, from uint64, since time.Time) (ReplayResult, error) {
	return s.replay(ctx, view, from, since, false)
}

// ReplayFromSnapshot rebuilds the view from its last snapshot and the
// events stored after it (offsets skip what the snapshot holds).
func (s *Service) ReplayFromSnapshot(ctx context.Context, view string) (ReplayResult, error) {
	return s.replay(ctx, view, 0, time.Time{}, true)
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

// viewDatabases lists the databases a view lives in, with its table there.
func (s *Service) viewDatabases(view string) ([]string, map[string]string) {
	var dbs []string
	tables := map[string]string{}
	for _, r := range s.cfg.Rules {
		if r.ViewName() != view {
			continue
		}
		if _, ok := tables[r.Database]; !ok {
			dbs = append(dbs, r.Database)
			tables[r.Database] = r.Table
		}
	}
	return dbs, tables
}

func (s *Service) replay(ctx context.Context, view string, from uint64, since time.Time, snapshot bool) (ReplayResult, error) {
	start := time.Now()
	dbs, tables := s.viewDatabases(view)
	if len(dbs) == 0 {
		return ReplayResult{View: view}, fmt.Errorf("%w %q", ErrUnknownView, view)
	}
	shadow := true
	for _, db := range dbs {
		shadow = shadow && sink.Shadowable(s.sinks[db].Store)
	}
	if !shadow {
		var restore func(*rules.Rule) (uint64, error)
		if snapshot {
			restore = func(r *rules.Rule) (uint64, error) {
				return sink.RestoreView(ctx, s.sinks[r.Database].Store, view, r.Table)
			}
		}
		return s.replayPaused(ctx, view, from, since, restore)
	}
	var res ReplayResult
	for _, db := range dbs {
		r, err := s.replayShadow(ctx, view, db, tables[db], from, since, snapshot)
		if err != nil {
			return r, fmt.Errorf("replay %s in %s: %w", view, db, err)
		}
		if res.View == "" {
			res = r
		} else {
			res.Events += r.Events
			res.UpTo = max(res.UpTo, r.UpTo)
		}
	}
	took := time.Since(start)
	res.Took = took.Round(time.Millisecond).String()
	s.log.Info("replayed view", zap.String("view", view), zap.Bool("shadow", true), zap.Uint64("events", res.Events), zap.Duration("took", took))
	return res, nil
}

// replayShadow rebuilds one database's copy of the view in its shadow table
// and swaps it in (see sink.PrepareShadow and sink.SwapShadow).
func (s *Service) replayShadow(ctx context.Context, view, db, table string, from uint64, since time.Time, snapshot bool) (ReplayResult, error) {
	res := ReplayResult{View: view, From: from, Since: since}
	st := s.sinks[db].Store
	var shadowRules []*rules.Rule
	for _, r := range s.cfg.Rules {
		if r.ViewName() == view && r.Database == db {
			c := *r
			c.Table, c.Name, c.Exporter, c.CreateTable = sink.ShadowTable(r.Table), sink.ShadowView(view), nil, false
			shadowRules = append(shadowRules, &c)
		}
	}
	eng, err := engine.New(engine.Options{Config: &rules.Config{Rules: shadowRules, Databases: s.cfg.Databases}, Sinks: s.sinks,
		DeadLetters: s.store, Log: s.log, BatchSize: s.opts.BatchSize, Views: []string{sink.ShadowView(view)}})
	if err != nil {
		return res, err
	}
	mode := sink.ShadowFromLive
	switch {
	case snapshot:
		mode = sink.ShadowFromSnapshot
	case from <= 1 && since.IsZero():
		mode, from = sink.ShadowEmpty, 1
		res.Truncated = true
	case !since.IsZero():
		if from, err = s.firstSeqSince(ctx, since); err != nil {
			return res, err
		}
	}
	snapSeq, err := sink.PrepareShadow(ctx, st, view, table, mode, from-min(from, 1))
	if err != nil {
		return res, err
	}
	if mode == sink.ShadowFromSnapshot {
		from = snapSeq + 1
	}
	if mode == sink.ShadowFromLive {
		// A lane whose offset is below from (a lagging consumer) is folded
		// from just after its offset, so the copy misses nothing.
		offs, err := viewOffsets(ctx, st, sink.ShadowView(view))
		if err != nil {
			return res, err
		}
		for _, lane := range s.store.Lanes() {
			from = min(from, offs[lane]+1)
		}
	}
	res.From = from
	upTo, err := s.store.LastSeq(ctx)
	if err != nil {
		return res, err
	}
	src, err := s.store.Replay(ctx, from, time.Time{})
	if err != nil {
		return res, err
	}
	defer src.Close()
	f := &folder{eng: eng, src: src, last: from - 1}
	if err := f.foldTo(ctx, upTo); err != nil {
		return res, err
	}
	if s.afterShadowFold != nil {
		s.afterShadowFold()
	}
	err = sink.SwapShadow(ctx, st, view, table, func(ctx context.Context) (map[string]uint64, error) {
		end, err := s.store.LastSeq(ctx)
		if err != nil {
			return nil, err
		}
		if err := f.foldTo(ctx, end); err != nil {
			return nil, err
		}
		res.UpTo = end
		offs := map[string]uint64{}
		for _, lane := range s.store.Lanes() {
			offs[lane] = end
		}
		return offs, nil
	})
	res.Events = f.events
	return res, err
}

// folder feeds a replay source into an engine up to a sequence.
type folder struct {
	eng    *engine.Engine
	src    source.Source
	last   uint64 // the last sequence folded
	events uint64
}

func (f *folder) foldTo(ctx context.Context, upTo uint64) error {
	for f.last < upTo {
		// The events up to upTo are stored already: a quiet two seconds
		// means there are none left (deleted or filtered out).
		nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		b, err := f.src.Next(nctx, 10000)
		cancel()
		if err != nil && ctx.Err() == nil && nctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if err := f.eng.Process(ctx, b.Msgs); err != nil {
			return err
		}
		f.events += uint64(len(b.Msgs))
		f.last = b.Msgs[len(b.Msgs)-1].Seq
	}
	return nil
}

// firstSeqSince is the sequence of the first stored event at or after t.
func (s *Service) firstSeqSince(ctx context.Context, t time.Time) (uint64, error) {
	src, err := s.store.Replay(ctx, 0, t)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	b, err := src.Next(nctx, 1)
	if err != nil {
		if ctx.Err() == nil && nctx.Err() != nil {
			last, err := s.store.LastSeq(ctx)
			return last + 1, err // nothing since t
		}
		return 0, err
	}
	return b.Msgs[0].Seq, nil
}

func viewOffsets(ctx context.Context, st sink.Store, view string) (map[string]uint64, error) {
	tx, err := st.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	return tx.Offsets(ctx, view)
}

// replayPaused rebuilds a view in place with the live consumers paused (the
// way for SQLite): offsets are cleared (rows too from the start) or restored
// from the snapshot, then the event store is folded in again.
func (s *Service) replayPaused(ctx context.Context, view string, from uint64, since time.Time, restore func(*rules.Rule) (uint64, error)) (ReplayResult, error) {
	res := ReplayResult{View: view, From: from, Since: since}
	start := time.Now()
	var eng *engine.Engine
	eng, err := s.newEngine([]string{view}, nil)
	if err != nil {
		return res, fmt.Errorf("%w %q: %w", ErrUnknownView, view, err)
	}
	if !since.IsZero() {
		if res.From, err = s.firstSeqSince(ctx, since); err != nil {
			return res, err
		}
		since = time.Time{}
	}
	s.gate.Lock()
	defer s.gate.Unlock()
	upTo, err := s.store.LastSeq(ctx)
	if err != nil {
		return res, err
	}
	res.UpTo = upTo
	res.Truncated = res.From <= 1 && res.Since.IsZero()
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
		if !res.Truncated {
			// A lane whose offset is below from (a lagging consumer) is folded
			// from just after its offset: clearing the offsets must lose nothing.
			offs, err := viewOffsets(ctx, s.sinks[r.Database].Store, view)
			if err != nil {
				return res, err
			}
			for _, lane := range s.store.Lanes() {
				res.From = min(res.From, offs[lane]+1)
			}
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
