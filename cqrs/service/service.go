// Package service assembles the CQRS engine from its configuration: the
// event store, one sink per database, the exporters, a consumer per owned
// partition, the HTTP API (publish, status, replay). It is what `rosen
// serve` and `rosen cqrs serve` run.
package service

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/cqrs/engine"
	"github.com/rosenmesh/rosen/cqrs/event"
	"github.com/rosenmesh/rosen/cqrs/exporter"
	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/cqrs/sink"
	"github.com/rosenmesh/rosen/cqrs/source"
)

// ErrConfig is a service that cannot start from its options.
var ErrConfig = errors.New("service: bad configuration")

// ErrStoreChanged is a view database whose offsets belong to another event
// store than the one opened (recreated under a new --data, or another
// NATS cluster): its offsets would skip the new store's first events as
// redeliveries.
var ErrStoreChanged = errors.New("service: the view database's offsets belong to another event store")

// storeView prefixes the offset-table view ("#store:<view>") under which a
// view records the identity of the event store its offsets count in:
// lane "js:<stream>@<id>".
const storeView = "#store:"

// Options configure a Service.
type Options struct {
	Files rules.Files
	// Config, when set, is used instead of loading Files (e.g. the files'
	// configuration plus CQRSRules from Kubernetes, rules.Config.WithRules).
	Config    *rules.Config
	DataDir   string
	JetStream source.JetStreamConfig // URL empty: embedded under DataDir/cqrs-nats
	// Worker and Workers split the partitions: this worker consumes partition
	// p when p % Workers == Worker.
	Worker, Workers int
	BatchSize       int
	Linger          time.Duration // how long a batch waits to fill (default 5ms)
	Log             *zap.Logger
	Registry        prometheus.Registerer
	// Sources are extra broker sources (kafka://…, amqp://…) consumed beside the event store.
	Sources []string
	// OnCommitted is passed to the live engine (see engine.Options).
	OnCommitted func(evs []*event.Event)
}

// Service is a running CQRS worker.
type Service struct {
	opts      Options
	log       *zap.Logger
	cfg       *rules.Config
	store     *source.EventStore
	sinks     map[string]*sink.Sink
	exporters map[string]exporter.Exporter
	engine    *engine.Engine
	// gate pauses the live consumers while a replay rebuilds a view in place
	// (SQLite; PostgreSQL and MySQL rebuild in a shadow table instead).
	gate sync.RWMutex
	// afterShadowFold, when set (tests), runs after a shadow replay has
	// folded the stored events and before it catches up and swaps: the
	// live consumers must keep committing meanwhile.
	afterShadowFold func()
}

// Open loads and validates the configuration and connects everything.
func Open(ctx context.Context, o Options) (*Service, error) {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Workers < 1 {
		o.Workers = 1
	}
	if o.Worker < 0 || o.Worker >= o.Workers {
		return nil, fmt.Errorf("%w: worker %d of %d", ErrConfig, o.Worker, o.Workers)
	}
	if o.Linger <= 0 {
		o.Linger = 5 * time.Millisecond
	}
	cfg := o.Config
	if cfg == nil {
		var err error
		if cfg, err = rules.Load(o.Files); err != nil {
			return nil, err
		}
	}
	var err error
	s := &Service{opts: o, log: o.Log.Named("cqrs"), cfg: cfg, sinks: map[string]*sink.Sink{}, exporters: map[string]exporter.Exporter{}}
	if o.JetStream.URL == "" && o.JetStream.DataDir == "" {
		o.JetStream.DataDir = filepath.Join(o.DataDir, "cqrs-nats")
	}
	if s.store, err = source.OpenEventStore(ctx, o.JetStream); err != nil {
		return nil, err
	}
	for name, db := range cfg.Databases {
		st, err := sink.Open(ctx, db, o.DataDir)
		if err == nil {
			err = st.Prepare(ctx, rulesOf(cfg, name))
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("database %s: %w", name, err)
		}
		s.sinks[name] = &sink.Sink{Name: name, Store: st}
		if err := s.checkStore(ctx, name, st); err != nil {
			s.Close()
			return nil, err
		}
	}
	for name, ex := range cfg.Exporters {
		x, err := exporter.Open(name, ex)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.exporters[name] = x
	}
	if s.engine, err = s.newEngine(nil, o.Registry); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// checkStore records the event store's identity beside each view's offsets
// in a view database, or refuses to start when a view holds another
// store's: resetting its offsets silently would re-apply or skip events
// depending on what the two stores hold, so the operator decides
// (docs/cqrs.md). The identity is kept per view (view "#store:<view>",
// lane "js:<stream>@<id>"), so deployments sharing a database with views of
// their own do not clash.
func (s *Service) checkStore(ctx context.Context, name string, st sink.Store) error {
	stream := s.store.Config().Stream
	prefix := "js:" + stream + "@"
	want := prefix + s.store.ID()
	tx, err := st.Begin(ctx)
	if err != nil {
		return fmt.Errorf("database %s: %w", name, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var stale, staleViews, views []string
	var other string
	missing := map[string]map[string]uint64{}
	for _, r := range rulesOf(s.cfg, name) {
		view := r.ViewName()
		if slices.Contains(views, view) {
			continue
		}
		views = append(views, view)
		offs, err := tx.Offsets(ctx, storeView+view)
		if err != nil {
			return fmt.Errorf("database %s: read the event store's identity: %w", name, err)
		}
		if _, ok := offs[want]; ok {
			continue
		}
		missing[storeView+view] = map[string]uint64{want: 1}
		for lane := range offs {
			if strings.HasPrefix(lane, prefix) {
				stale, other = append(stale, "'"+view+"', '"+storeView+view+"'"), strings.TrimPrefix(lane, prefix)
				staleViews = append(staleViews, view)
				break
			}
		}
	}
	if len(stale) > 0 {
		return fmt.Errorf("%w: in database %s the offsets of views %s count in event store %s %s, but the event store "+
			"opened is %s (recreated, e.g. a new --data, or another NATS): its events would be skipped as redeliveries. "+
			"Point the event store back at the old data, or reset these offsets deliberately so the views fold the new "+
			"store from its start: DELETE FROM %s WHERE view_name IN (%s) AND (lane LIKE 'js:%s:%%' OR lane LIKE 'js:%s@%%') "+
			"(then replay the views that must drop rows of the old store)",
			ErrStoreChanged, name, strings.Join(staleViews, ", "), stream, other, s.store.ID(), sink.OffsetTable, strings.Join(stale, ", "), stream, stream)
	}
	if len(missing) == 0 {
		return nil
	}
	for view, offs := range missing {
		if err := tx.SetOffsets(ctx, view, offs); err != nil {
			return fmt.Errorf("database %s: record the event store's identity: %w", name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("database %s: record the event store's identity: %w", name, err)
	}
	return nil
}

func (s *Service) newEngine(views []string, reg prometheus.Registerer) (*engine.Engine, error) {
	return engine.New(engine.Options{Config: s.cfg, Sinks: s.sinks, Exporters: s.exporters, DeadLetters: s.store,
		Log: s.log, Registry: reg, BatchSize: s.opts.BatchSize, Views: views, OnCommitted: s.opts.OnCommitted})
}

func rulesOf(cfg *rules.Config, db string) []*rules.Rule {
	var out []*rules.Rule
	for _, r := range cfg.Rules {
		if r.Database == db {
			out = append(out, r)
		}
	}
	return out
}

// Partitions are the event-store partitions this worker owns.
func (s *Service) Partitions() []int {
	var ps []int
	for p := range s.store.Config().Partitions {
		if p%s.opts.Workers == s.opts.Worker {
			ps = append(ps, p)
		}
	}
	return ps
}

// Run consumes every owned partition until ctx ends: one durable consumer
// for all of them (the engine writes their lanes side by side).
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, 1+len(s.opts.Sources))
	if ps := s.Partitions(); len(ps) > 0 {
		src, err := s.store.Consumer(ctx, s.store.ConsumerName(ps), ps, s.opts.Linger)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer src.Close()
			errs <- s.engine.Run(ctx, gated{src: src, gate: &s.gate})
		}()
	}
	for _, u := range s.opts.Sources {
		src, err := source.OpenURL(u, s.opts.BatchSize)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer src.Close()
			errs <- s.engine.Run(ctx, gated{src: src, gate: &s.gate})
		}()
	}
	s.log.Info("cqrs running", zap.Ints("partitions", s.Partitions()), zap.Int("rules", len(s.cfg.Rules)), zap.Int("brokerSources", len(s.opts.Sources)))
	wg.Wait()
	close(errs)
	return errors.Join(drain(errs)...)
}

func drain(ch chan error) []error {
	var out []error
	for e := range ch {
		out = append(out, e)
	}
	return out
}

// gated holds the service's read lock from a batch's fetch to its ack, so
// that a replay (which takes the write lock) never interleaves with live writes.
type gated struct {
	src  source.Source
	gate *sync.RWMutex
}

func (g gated) Next(ctx context.Context, max int) (source.Batch, error) {
	b, err := g.src.Next(ctx, max)
	if err != nil {
		return b, err
	}
	g.gate.RLock()
	commit := b.Commit
	var unlock sync.Once
	b.Commit = func(ctx context.Context) error {
		// The engine retries a failed ack; the lock is released once, after the first attempt.
		defer unlock.Do(g.gate.RUnlock)
		return commit(ctx)
	}
	return b, nil
}

func (g gated) Close() error { return g.src.Close() }

// Publish stores one event envelope in the event store.
func (s *Service) Publish(ctx context.Context, data []byte) (uint64, error) {
	return s.store.Publish(ctx, data)
}

// Config is the loaded configuration.
func (s *Service) Config() *rules.Config { return s.cfg }

// EventStore is the JetStream event store.
func (s *Service) EventStore() *source.EventStore { return s.store }

// Close releases every connection.
func (s *Service) Close() {
	for _, x := range s.exporters {
		_ = x.Close()
	}
	for _, sk := range s.sinks {
		_ = sk.Store.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
}
