// Package engine runs the CQRS pipeline: batches from a source are decoded,
// routed through the rules, folded into each database in one transaction per
// database, dead-lettered where they must be, exported, and only then
// acknowledged to the source.
package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/cqrs/event"
	"github.com/rosenmesh/rosen/cqrs/exporter"
	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/cqrs/sink"
	"github.com/rosenmesh/rosen/cqrs/source"
)

// ErrConfig is a pipeline that cannot be built (a rule's database has no sink).
var ErrConfig = errors.New("engine: bad configuration")

// DeadLetters stores rejected events with their reason (the JetStream
// dead-letter stream). Put must return only once the letter is durable.
type DeadLetters interface {
	DeadLetter(ctx context.Context, rule string, seq uint64, reason string, data []byte) error
}

// Options build an Engine.
type Options struct {
	Config      *rules.Config
	Sinks       map[string]*sink.Sink // by database name
	Exporters   map[string]exporter.Exporter
	DeadLetters DeadLetters
	Log         *zap.Logger
	Registry    prometheus.Registerer // may be nil
	BatchSize   int                   // default 10000 (a backlog drains in large batches; see source linger)
	// Parallel is how many committers write a source's lanes side by side
	// (default: the number of CPUs, at most 4; see Run).
	Parallel int
	// Views restricts the engine to these views (replay, backfill); events of
	// other types are ignored rather than dead-lettered.
	Views []string
	// MaxBackoff caps the wait between retries of a failing batch (default 5s).
	MaxBackoff time.Duration
	// OnCommitted, if set, sees each batch's decoded events once they are
	// committed, dead-lettered and exported (benchmarks measure lag with it).
	OnCommitted func(evs []*event.Event)
}

// Engine is one pipeline.
type Engine struct {
	opts    Options
	rules   []*rules.Rule
	meta    map[*rules.Rule]ruleMeta
	log     *zap.Logger
	metrics *metrics
	status  *statusBook
}

// New checks that every rule has its sink and exporters.
func New(o Options) (*Engine, error) {
	if o.BatchSize <= 0 {
		o.BatchSize = 10000
	}
	if o.Parallel <= 0 {
		o.Parallel = min(runtime.GOMAXPROCS(0), 4)
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	e := &Engine{opts: o, log: o.Log.Named("cqrs")}
	views := map[string]bool{}
	for _, v := range o.Views {
		views[v] = true
	}
	for _, r := range o.Config.Rules {
		if len(views) > 0 && !views[r.ViewName()] {
			continue
		}
		if o.Sinks[r.Database] == nil {
			return nil, fmt.Errorf("%w: %s: no sink for database %q", ErrConfig, r.Where(), r.Database)
		}
		for _, x := range r.Exporter {
			if o.Exporters[x] == nil {
				return nil, fmt.Errorf("%w: %s: exporter %q is not open", ErrConfig, r.Where(), x)
			}
		}
		e.rules = append(e.rules, r)
	}
	if len(views) > 0 && len(e.rules) == 0 {
		return nil, fmt.Errorf("%w: no rule feeds views %v", ErrConfig, o.Views)
	}
	m, err := newMetrics(o.Registry)
	if err != nil {
		return nil, err
	}
	e.metrics = m
	e.status = newStatusBook(e.rules)
	e.meta = map[*rules.Rule]ruleMeta{}
	for _, r := range e.rules {
		e.meta[r] = ruleMeta{events: m.events.WithLabelValues(ruleLabel(r)), lag: m.lag.WithLabelValues(ruleLabel(r))}
	}
	return e, nil
}

// Run processes batches from src until ctx ends or src closes. It is a
// pipeline: while earlier batches are in the databases (and then
// acknowledged), the next one is fetched, decoded and routed. A batch is
// split by lane (broker partition): each lane always goes to the same one of
// Parallel committers, which write their parts of successive batches in
// order, side by side with the others (lanes hold disjoint event keys). A
// batch is acknowledged once every part of it is committed, and batches are
// acknowledged strictly in order (the acknowledgement may cover the whole
// batch: JetStream's AckAll).
func (e *Engine) Run(ctx context.Context, src source.Source) error {
	type part struct {
		p    *prepared
		done chan struct{} // closed once committed
	}
	type fetched struct {
		b     source.Batch
		parts []*part
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	n := e.opts.Parallel
	committers := make([]chan *part, n)
	for i := range committers {
		ch := make(chan *part)
		committers[i] = ch
		wg.Go(func() {
			for pt := range ch {
				if err := e.commit(ctx, pt.p); err != nil {
					cancel() // only ctx ends commit early
					return
				}
				close(pt.done)
			}
		})
	}
	acks := make(chan fetched, n)
	wg.Go(func() {
		for f := range acks {
			for _, pt := range f.parts {
				select {
				case <-pt.done:
				case <-ctx.Done():
					return
				}
			}
			if err := e.retry(ctx, "acknowledge", func() error { return f.b.Commit(ctx) }); err != nil {
				cancel()
				return
			}
		}
	})
	defer func() {
		cancel()
		for _, ch := range committers {
			close(ch)
		}
		close(acks)
		wg.Wait()
	}()
	for {
		// Up to BatchSize events per lane part and transaction (a source
		// of one lane fills one committer with several in a row).
		b, err := src.Next(ctx, e.opts.BatchSize*n)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, source.ErrClosed) {
				return nil
			}
			e.log.Warn("source failed; retrying", zap.Error(err))
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		f := fetched{b: b}
		to := make([]int, 0, n)
		for i, msgs := range splitLanes(b.Msgs, n) {
			for lo := 0; lo < len(msgs); lo += e.opts.BatchSize {
				f.parts = append(f.parts, &part{p: e.prepare(msgs[lo:min(lo+e.opts.BatchSize, len(msgs))]), done: make(chan struct{})})
				to = append(to, i)
			}
		}
		for k, pt := range f.parts {
			select {
			case committers[to[k]] <- pt:
			case <-ctx.Done():
				return nil
			}
		}
		select {
		case acks <- f:
		case <-ctx.Done():
			return nil
		}
	}
}

// splitLanes divides a batch among n committers by partition, keeping the
// order of each part (every lane of a partition goes to the same part).
func splitLanes(msgs []source.Msg, n int) [][]source.Msg {
	if n <= 1 {
		return [][]source.Msg{msgs}
	}
	parts := make([][]source.Msg, n)
	first := laneIndex(msgs[0].Partition, n)
	same := true
	for _, m := range msgs {
		if laneIndex(m.Partition, n) != first {
			same = false
			break
		}
	}
	if same {
		parts[first] = msgs
		return parts
	}
	for _, m := range msgs {
		i := laneIndex(m.Partition, n)
		if parts[i] == nil {
			parts[i] = make([]source.Msg, 0, len(msgs)/n+len(msgs)/8)
		}
		parts[i] = append(parts[i], m)
	}
	return parts
}

func laneIndex(partition, n int) int {
	if i := partition % n; i >= 0 {
		return i
	}
	return partition%n + n
}

// ruleMeta holds a rule's metrics, resolved once (not per event).
type ruleMeta struct {
	events prometheus.Counter
	lag    prometheus.Observer
}

// routed is one event of a batch with its ops per database.
type routed struct {
	msg source.Msg
	ev  *event.Event
}

// prepared is a decoded and routed batch, ready for the databases.
type prepared struct {
	start   time.Time
	msgs    []source.Msg
	letters []letter
	ops     map[string][]sink.Op
	events  []routed
}

// Process runs one batch to completion: after it returns nil every event is
// committed (or dead-lettered) and exported, so the caller may acknowledge.
// It retries transient failures itself and returns an error only when ctx ends.
func (e *Engine) Process(ctx context.Context, msgs []source.Msg) error {
	return e.commit(ctx, e.prepare(msgs))
}

// prepare decodes and routes a batch (no I/O).
func (e *Engine) prepare(msgs []source.Msg) *prepared {
	p := &prepared{start: time.Now(), msgs: msgs, ops: map[string][]sink.Op{}, events: make([]routed, len(msgs))}
	evs, errs := e.decode(msgs)
	for i, m := range msgs {
		p.events[i].msg = m
		ev, err := evs[i], errs[i]
		if err != nil {
			p.letters = append(p.letters, letter{seq: m.Seq, reason: "malformed: " + err.Error(), data: m.Data})
			continue
		}
		ev.Seq = m.Seq
		p.events[i].ev = ev
		matched := false
		for _, r := range e.rules {
			ok, err := r.Matches(ev)
			if err != nil {
				p.letters = append(p.letters, letter{rule: r.ViewName(), seq: m.Seq, reason: err.Error(), data: m.Data})
				e.metrics.deadLetters.WithLabelValues(ruleLabel(r), "expr").Inc()
				matched = true
				continue
			}
			if !ok {
				matched = matched || r.Event == ev.Type
				continue
			}
			matched = true
			row, err := r.Project(ev)
			if err != nil {
				p.letters = append(p.letters, letter{rule: r.ViewName(), seq: m.Seq, reason: err.Error(), data: m.Data})
				e.metrics.deadLetters.WithLabelValues(ruleLabel(r), "project").Inc()
				continue
			}
			e.meta[r].events.Inc()
			ops := p.ops[r.Database]
			if ops == nil {
				ops = make([]sink.Op, 0, len(msgs))
			}
			p.ops[r.Database] = append(ops, sink.Op{Rule: r, Row: row, Seq: m.Seq, Lane: m.Lane, Tag: i})
		}
		if !matched && len(e.opts.Views) == 0 {
			p.letters = append(p.letters, letter{seq: m.Seq, reason: fmt.Sprintf("no rule for event type %q", ev.Type), data: m.Data})
			e.metrics.deadLetters.WithLabelValues("", "unknown_type").Inc()
		}
	}
	return p
}

var decoders = sync.Pool{New: func() any { return new(event.Decoder) }}

// decodeChunk is the smallest share of a batch decoded on a goroutine of its own.
const decodeChunk = 1024

// decode decodes a batch's envelopes, on up to Parallel goroutines.
func (e *Engine) decode(msgs []source.Msg) ([]*event.Event, []error) {
	evs := make([]*event.Event, len(msgs))
	errs := make([]error, len(msgs))
	run := func(lo, hi int) {
		d := decoders.Get().(*event.Decoder)
		defer decoders.Put(d)
		for i := lo; i < hi; i++ {
			evs[i], errs[i] = d.Decode(msgs[i].Data)
		}
	}
	workers := min(e.opts.Parallel, len(msgs)/decodeChunk)
	if workers <= 1 {
		run(0, len(msgs))
		return evs, errs
	}
	var wg sync.WaitGroup
	size := (len(msgs) + workers - 1) / workers
	for lo := size; lo < len(msgs); lo += size {
		wg.Go(func() { run(lo, min(lo+size, len(msgs))) })
	}
	run(0, min(size, len(msgs)))
	wg.Wait()
	return evs, errs
}

// commit writes a prepared batch to its databases, stores its dead letters
// and runs its exporters.
func (e *Engine) commit(ctx context.Context, p *prepared) error {
	start, msgs, letters, ops, events := p.start, p.msgs, p.letters, p.ops, p.events
	var committed []sink.Op
	for db, dbOps := range ops {
		s := e.opts.Sinks[db]
		var fails []sink.Failure
		err := e.retry(ctx, "database "+db, func() error {
			res, f, err := s.Apply(ctx, dbOps)
			fails = append(fails, f...) // failures found before a transient error are marked already
			if err == nil {
				e.metrics.rows.WithLabelValues(db).Add(float64(res.Rows))
				e.metrics.skipped.WithLabelValues(db).Add(float64(res.Skipped))
			}
			return err
		})
		if err != nil {
			return err
		}
		failed := map[int]map[*rules.Rule]bool{}
		for _, f := range fails {
			letters = append(letters, letter{rule: f.Op.Rule.ViewName(), seq: f.Op.Seq, reason: f.Err.Error(), data: msgs[f.Op.Tag].Data})
			e.metrics.deadLetters.WithLabelValues(ruleLabel(f.Op.Rule), "rejected").Inc()
			if failed[f.Op.Tag] == nil {
				failed[f.Op.Tag] = map[*rules.Rule]bool{}
			}
			failed[f.Op.Tag][f.Op.Rule] = true
		}
		if len(fails) == 0 && committed == nil {
			committed = dbOps // the usual case: one database, nothing rejected
			continue
		}
		for _, op := range dbOps {
			if !failed[op.Tag][op.Rule] {
				committed = append(committed, op)
			}
		}
	}
	if err := e.deadLetter(ctx, letters); err != nil {
		return err
	}
	refused, err := e.export(ctx, committed, events)
	if err != nil {
		return err
	}
	if err := e.deadLetter(ctx, refused); err != nil {
		return err
	}
	letters = append(letters, refused...)
	e.status.record(committed, letters, msgs)
	now := time.Now()
	for _, op := range committed {
		if t := events[op.Tag].ev.Time; !t.IsZero() {
			e.meta[op.Rule].lag.Observe(now.Sub(t).Seconds())
		}
	}
	e.metrics.batch.Observe(now.Sub(start).Seconds())
	if e.opts.OnCommitted != nil {
		evs := make([]*event.Event, 0, len(events))
		for _, r := range events {
			if r.ev != nil {
				evs = append(evs, r.ev)
			}
		}
		e.opts.OnCommitted(evs)
	}
	return nil
}

type letter struct {
	rule   string
	seq    uint64
	reason string
	data   []byte
}

func (e *Engine) deadLetter(ctx context.Context, letters []letter) error {
	for _, l := range letters {
		l.reason = source.TruncateReason(l.reason) // a database error may quote a huge value
		e.log.Warn("dead letter", zap.String("view", l.rule), zap.Uint64("seq", l.seq), zap.String("reason", l.reason))
		if e.opts.DeadLetters == nil {
			continue
		}
		if err := e.retry(ctx, "dead-letter stream", func() error {
			return e.opts.DeadLetters.DeadLetter(ctx, l.rule, l.seq, l.reason, l.data)
		}); err != nil {
			return err
		}
	}
	return nil
}

// export emits every committed op (including redeliveries the offsets
// skipped: at least once) to its rule's exporters. Transient failures are
// retried; a permanent one (exporter.ErrPermanent: retrying cannot help)
// is narrowed down record by record, and the refused records come back as
// dead letters so the pipeline goes on.
func (e *Engine) export(ctx context.Context, ops []sink.Op, events []routed) ([]letter, error) {
	type item struct {
		rec exporter.Record
		op  sink.Op
	}
	per := map[string][]item{}
	for _, op := range ops {
		if len(op.Rule.Exporter) == 0 {
			continue
		}
		ev := events[op.Tag].ev
		rec := exporter.Record{EventID: ev.ID, Event: ev.Type, Seq: op.Seq, View: op.Rule.ViewName(), Database: op.Rule.Database,
			Table: op.Rule.Table, Method: op.Rule.Method, Key: op.Row.Key, Row: op.Row.Values}
		for _, x := range op.Rule.Exporter {
			per[x] = append(per[x], item{rec, op})
		}
	}
	var refused []letter
	for name, items := range per {
		x := e.opts.Exporters[name]
		emit := func(recs []exporter.Record) (permanent error, err error) {
			err = e.retry(ctx, "exporter "+name, func() error {
				err := x.Emit(ctx, recs)
				if errors.Is(err, exporter.ErrPermanent) {
					permanent = err
					return nil
				}
				return err
			})
			return permanent, err
		}
		recs := make([]exporter.Record, len(items))
		for i, it := range items {
			recs[i] = it.rec
		}
		perm, err := emit(recs)
		if err != nil {
			return nil, err
		}
		if perm == nil {
			e.metrics.exported.WithLabelValues(name).Add(float64(len(recs)))
			continue
		}
		for i, it := range items {
			if len(items) > 1 {
				if perm, err = emit(recs[i : i+1]); err != nil {
					return nil, err
				}
			}
			if perm == nil {
				e.metrics.exported.WithLabelValues(name).Inc()
				continue
			}
			refused = append(refused, letter{rule: it.rec.View, seq: it.op.Seq, reason: "exporter " + name + ": " + perm.Error(),
				data: events[it.op.Tag].msg.Data})
			e.metrics.deadLetters.WithLabelValues(ruleLabel(it.op.Rule), "export").Inc()
		}
	}
	return refused, nil
}

// retry runs f until it succeeds, backing off up to MaxBackoff; it gives up only when ctx ends.
func (e *Engine) retry(ctx context.Context, what string, f func() error) error {
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			if attempt > 1 {
				e.log.Info("recovered", zap.String("what", what), zap.Int("attempts", attempt))
				e.status.setError("")
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.metrics.retries.WithLabelValues(what).Inc()
		e.status.setError(what + ": " + err.Error())
		e.log.Warn("retrying", zap.String("what", what), zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err))
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, e.opts.MaxBackoff)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func ruleLabel(r *rules.Rule) string { return r.Event + ":" + r.Database + "." + r.Table }
