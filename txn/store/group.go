package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
)

// errClosed is returned to a write that arrives after Close.
var errClosed = errors.New("store: closed")

// groupTimeout bounds one batch (a database that hangs fails its writers
// instead of holding them for ever).
const groupTimeout = 15 * time.Second

// groupOp is one caller's write, waiting for its batch.
type groupOp struct {
	ctx    context.Context                      // the caller's: a write whose caller gave up before its batch started is not run
	key    string                               // the transaction id, the order of writes in a batch
	pg     *pgOp                                // PostgreSQL: statements to queue
	fn     func(context.Context, *sql.Tx) error // SQLite: statements to run; an error is this write's answer
	result any
	err    error
	done   chan struct{}
}

// grouper is group commit: workers take every write waiting at the moment,
// run them as one database transaction and release each writer once it
// committed. At low load a write runs alone at once (an idle worker takes
// it); under load, writes that arrive while the workers are busy share the
// next commit.
type grouper struct {
	ops  chan *groupOp // unbuffered: a write is taken only by a worker that will finish it
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	max  int
	exec func(ctx context.Context, ops []*groupOp) error
	// undone reports whether a failed batch certainly committed nothing (the
	// database refused a statement and rolled back), so that its writes may
	// run again one by one. When the answer was lost (a connection dropped
	// during the commit) it may have committed: every writer gets the error,
	// as a write of its own would have.
	undone func(error) bool
	// refused reports whether a write run alone failed because the database
	// refused its statement (the database itself works).
	refused func(error) bool
}

func newGrouper(workers, maxBatch int, exec func(ctx context.Context, ops []*groupOp) error, undone, refused func(error) bool) *grouper {
	g := &grouper{ops: make(chan *groupOp), stop: make(chan struct{}), max: maxBatch, exec: exec, undone: undone, refused: refused}
	for range workers {
		g.wg.Go(g.work)
	}
	return g
}

// do runs op in the next batch and returns once that batch committed (or failed).
func (g *grouper) do(ctx context.Context, op *groupOp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op.ctx, op.done = ctx, make(chan struct{})
	select {
	case g.ops <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stop:
		return errClosed
	}
	<-op.done // bounded by groupTimeout
	return op.err
}

func (g *grouper) work() {
	for {
		var first *groupOp
		select {
		case first = <-g.ops:
		case <-g.stop:
			return
		}
		batch := []*groupOp{first}
	drain:
		for len(batch) < g.max {
			select {
			case op := <-g.ops:
				batch = append(batch, op)
			default:
				break drain
			}
		}
		g.run(batch)
	}
}

func (g *grouper) run(all []*groupOp) {
	batch := all[:0]
	for _, op := range all {
		if err := op.ctx.Err(); err != nil {
			op.err = err // its caller gave up while it waited: not run, as a canceled call of its own would not be
			close(op.done)
			continue
		}
		batch = append(batch, op)
	}
	if len(batch) == 0 {
		return
	}
	// Row locks are taken in transaction-id order in every batch, so two
	// batches cannot deadlock each other on the same rows.
	slices.SortStableFunc(batch, func(a, b *groupOp) int { return strings.Compare(a.key, b.key) })
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	err := g.exec(ctx, batch)
	if err != nil && len(batch) > 1 && g.undone(err) {
		// The whole batch rolled back: run each write alone, so that only the
		// write at fault fails (and a deadlock victim simply runs again). Once
		// the database itself fails (not one write's statement), the rest get
		// that error at once instead of waiting for it one by one.
		var down error
		for _, op := range batch {
			op.err, op.result = nil, nil
			if down != nil {
				op.err = down
				close(op.done)
				continue
			}
			one, cancel := context.WithTimeout(context.Background(), groupTimeout)
			if err := g.exec(one, []*groupOp{op}); err != nil {
				op.err = err
				if !g.refused(err) {
					down = err
				}
			}
			cancel()
			close(op.done)
		}
		return
	}
	for _, op := range batch {
		if err != nil {
			op.err = err
		}
		close(op.done)
	}
}

func (g *grouper) close() {
	g.once.Do(func() { close(g.stop) })
	g.wg.Wait()
}
