package sink

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// Op is one event projected by one rule into this sink.
type Op struct {
	Rule *rules.Rule
	Row  rules.Row
	Seq  uint64 // sequence within its lane; 0 means unknown (no offset check)
	// Lane is the ordered broker partition the event came from
	// ("js:ROSEN_CQRS:0", "kafka:orders:3"): its offsets are kept apart.
	Lane string
	Tag  int // the caller's index of the event
}

// Failure is an op that the database rejected for good.
type Failure struct {
	Op  Op
	Err error
}

// Result counts what a batch did.
type Result struct {
	Applied int // ops folded into writes
	Skipped int // ops at or below their lane's offset (redeliveries)
	Rows    int // rows upserted or deleted
}

// Sink applies batches of ops to one Store.
type Sink struct {
	Name  string
	Store Store
}

// Apply writes the ops in one transaction. If the database rejects the batch
// for a row's fault, it retries op by op (in sequence order) to isolate the
// bad ones, which come back as failures with their offset recorded, so a
// redelivery does not dead-letter them twice. The ops of one event into one
// view (several rules on its table) are retried together and fail together.
// A transient error returns ErrUnavailable with the failures found so far
// (they are already marked).
func (s *Sink) Apply(ctx context.Context, ops []Op) (Result, []Failure, error) {
	res, err := s.applyTx(ctx, ops)
	if err == nil {
		return res, nil, nil
	}
	if !s.permanent(ctx, err) {
		return Result{}, nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, s.Name, err)
	}
	sorted := slices.Clone(ops)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Seq != sorted[j].Seq {
			return sorted[i].Seq < sorted[j].Seq
		}
		return sorted[i].Lane < sorted[j].Lane
	})
	var total Result
	var failures []Failure
	for _, group := range eventGroups(sorted) {
		r, err := s.applyTx(ctx, group)
		if err == nil {
			total.Applied += r.Applied
			total.Skipped += r.Skipped
			total.Rows += r.Rows
			continue
		}
		if !s.permanent(ctx, err) {
			return total, failures, fmt.Errorf("%w: %s: %w", ErrUnavailable, s.Name, err)
		}
		if err := s.mark(ctx, group[0]); err != nil {
			return total, failures, fmt.Errorf("%w: %s: mark rejected row: %w", ErrUnavailable, s.Name, err)
		}
		for _, op := range group {
			failures = append(failures, Failure{Op: op, Err: fmt.Errorf("%w: %s.%s key %q: %w", ErrRejected, s.Name, op.Rule.Table, op.Row.Key, err)})
		}
	}
	return total, failures, nil
}

// eventGroups splits ops sorted by sequence and lane into what is retried
// alone: one op, or the ops of one event (same lane and known sequence) into
// one view. Those share the view's offset, so the second would be skipped as
// a redelivery once the first had committed alone (two rules of one event
// and table, such as an upsert and a delete with exclusive filters).
func eventGroups(sorted []Op) [][]Op {
	var out [][]Op
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[i].Seq > 0 && sorted[j].Seq == sorted[i].Seq && sorted[j].Lane == sorted[i].Lane {
			j++
		}
		run := sorted[i:j]
		i = j
		if len(run) == 1 {
			out = append(out, run)
			continue
		}
		byView := map[string]int{}
		for _, op := range run {
			v := op.Rule.ViewName()
			k, ok := byView[v]
			if !ok {
				k = len(out)
				byView[v] = k
				out = append(out, nil)
			}
			out[k] = append(out[k], op)
		}
	}
	return out
}

func (s *Sink) permanent(ctx context.Context, err error) bool {
	if ctx.Err() != nil || !s.Store.Permanent(err) {
		return false
	}
	return s.Store.Ping(ctx) == nil
}

// mark records a rejected op's sequence so that it is not retried.
func (s *Sink) mark(ctx context.Context, op Op) error {
	if op.Seq == 0 {
		return nil
	}
	tx, err := s.Store.Begin(ctx)
	if err != nil {
		return err
	}
	view := op.Rule.ViewName()
	if _, err := tx.Offsets(ctx, view); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	if err := tx.SetOffsets(ctx, view, map[string]uint64{op.Lane: op.Seq}); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	return tx.Commit(ctx)
}

// keyState is the fold of one key's ops within a batch.
type keyState struct {
	rule    *rules.Rule
	first   map[string]any // the first op's values: the primary key's, for a DELETE
	deleted bool           // a delete happened: DELETE before any write
	values  map[string]any // nil: no row to write
	// whole: values are one insert/upsert op's own map, every column of its
	// rule (absent ones are NULL); a merge copies it before writing.
	whole bool
	owned bool // values is a map of this fold's own (merges write into it)
}

// ruleCols caches a rule's sorted columns and their group signature.
type ruleCols struct {
	cols []string
	sig  string
}

func (s *Sink) applyTx(ctx context.Context, ops []Op) (Result, error) {
	var res Result
	views := map[string][]Op{}
	var order []string
	if len(ops) > 0 && ops[0].Rule.ViewName() == ops[len(ops)-1].Rule.ViewName() && oneView(ops) {
		order = []string{ops[0].Rule.ViewName()}
		views[order[0]] = ops // applyView sorts them in place: the caller's order is not kept
		ops = nil
	}
	for _, op := range ops {
		v := op.Rule.ViewName()
		if _, ok := views[v]; !ok {
			order = append(order, v)
		}
		views[v] = append(views[v], op)
	}
	tx, err := s.Store.Begin(ctx)
	if err != nil {
		return res, err
	}
	for _, view := range order {
		r, err := s.applyView(ctx, tx, view, views[view])
		if err != nil {
			_ = tx.Rollback(ctx)
			return Result{}, err
		}
		res.Applied += r.Applied
		res.Skipped += r.Skipped
		res.Rows += r.Rows
	}
	if err := tx.Commit(ctx); err != nil {
		return Result{}, err
	}
	return res, nil
}

func oneView(ops []Op) bool {
	v := ops[0].Rule.ViewName()
	for _, op := range ops {
		if op.Rule.ViewName() != v {
			return false
		}
	}
	return true
}

func (s *Sink) applyView(ctx context.Context, tx Tx, view string, ops []Op) (Result, error) {
	var res Result
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Seq < ops[j].Seq })
	marks, err := tx.Offsets(ctx, view)
	if err != nil {
		return res, fmt.Errorf("read offsets: %w", err)
	}
	newMarks := map[string]uint64{}
	states := make(map[string]int, len(ops))    // key → index in stateOrder
	stateOrder := make([]keyState, 0, len(ops)) // one allocation for every key's fold
	for _, op := range ops {
		if op.Seq > 0 && op.Seq <= marks[op.Lane] {
			res.Skipped++
			continue
		}
		res.Applied++
		if op.Seq > newMarks[op.Lane] {
			newMarks[op.Lane] = op.Seq
		}
		i, ok := states[op.Row.Key]
		if !ok {
			i = len(stateOrder)
			states[op.Row.Key] = i
			stateOrder = append(stateOrder, keyState{rule: op.Rule, first: op.Row.Values})
		}
		fold(&stateOrder[i], op)
	}
	if len(states) == 0 {
		return res, nil
	}
	table, pk := stateOrder[0].rule.Table, stateOrder[0].rule.PrimaryColumns()
	var deletes []map[string]any
	groups := map[string][]map[string]any{}
	var groupOrder []string
	groupCols := map[string][]string{}
	whole := map[*rules.Rule]ruleCols{}
	for i := range stateOrder {
		st := &stateOrder[i]
		if st.deleted {
			key := make(map[string]any, len(pk))
			for _, c := range pk {
				key[c] = st.first[c]
			}
			deletes = append(deletes, key)
		}
		if st.values == nil {
			continue
		}
		var rc ruleCols
		if st.whole {
			var ok bool
			if rc, ok = whole[st.rule]; !ok {
				rc.cols = slices.Sorted(slices.Values(st.rule.Columns()))
				rc.sig = strings.Join(rc.cols, "\x00")
				whole[st.rule] = rc
			}
		} else {
			rc.cols = slices.Sorted(maps.Keys(st.values))
			rc.sig = strings.Join(rc.cols, "\x00")
		}
		if _, ok := groups[rc.sig]; !ok {
			groupOrder = append(groupOrder, rc.sig)
			groupCols[rc.sig] = rc.cols
		}
		groups[rc.sig] = append(groups[rc.sig], st.values)
	}
	if len(deletes) > 0 {
		if err := tx.Delete(ctx, table, pk, deletes); err != nil {
			return res, fmt.Errorf("delete from %s: %w", table, err)
		}
		res.Rows += len(deletes)
	}
	for _, sig := range groupOrder {
		cols := groupCols[sig]
		if err := tx.Upsert(ctx, table, pk, cols, groups[sig]); err != nil {
			return res, fmt.Errorf("upsert into %s: %w", table, err)
		}
		res.Rows += len(groups[sig])
	}
	if len(newMarks) > 0 {
		if err := tx.SetOffsets(ctx, view, newMarks); err != nil {
			return res, fmt.Errorf("write offsets: %w", err)
		}
	}
	return res, nil
}

// fold applies one op to its key's state: delete drops the row, insert and
// upsert replace the rule's columns (absent ones become NULL), update merges
// the columns the event carries. Op values are shared (exporters read them):
// they are copied before a merge changes them.
func fold(st *keyState, op Op) {
	switch {
	case op.Row.Delete:
		st.deleted, st.values, st.whole, st.owned = true, nil, false, false
	case op.Row.Full:
		st.values, st.whole, st.owned = op.Row.Values, true, false
	case st.owned:
		maps.Copy(st.values, op.Row.Values)
	default:
		merged := make(map[string]any, len(st.values)+len(op.Row.Values))
		if st.whole {
			for _, c := range st.rule.Columns() {
				merged[c] = nil
			}
		}
		maps.Copy(merged, st.values)
		maps.Copy(merged, op.Row.Values)
		st.values, st.whole, st.owned = merged, false, true
	}
	st.rule = op.Rule
}

// IsUnavailable reports a transient sink error.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }
