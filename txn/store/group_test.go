package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	errRefusedStmt = errors.New("statement refused")
	errDBDown      = errors.New("database down")
)

// A batch that rolled back runs its writes alone; once a write alone fails
// because the database is down, the rest get that error without being run.
func TestGrouperFallbackStopsWhenTheDatabaseIsDown(t *testing.T) {
	var singles atomic.Int32
	release := make(chan struct{})
	g := newGrouper(1, 256, func(ctx context.Context, ops []*groupOp) error {
		if ops[0].key == "block" {
			<-release // hold the only worker so that the next writes queue up into one batch
			return nil
		}
		if len(ops) > 1 {
			return errRefusedStmt
		}
		if singles.Add(1) == 2 {
			return errDBDown
		}
		return nil
	}, func(err error) bool { return errors.Is(err, errRefusedStmt) }, func(err error) bool { return errors.Is(err, errRefusedStmt) })
	defer g.close()
	ctx := context.Background()
	blocked := make(chan error, 1)
	go func() { blocked <- g.do(ctx, &groupOp{key: "block"}) }()
	time.Sleep(20 * time.Millisecond)
	const n = 5
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = g.do(ctx, &groupOp{key: fmt.Sprintf("k%d", i)}) })
	}
	time.Sleep(200 * time.Millisecond) // all five wait for the worker (blocked sending: the channel is unbuffered)
	close(release)
	wg.Wait()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	// Sorted by key: k0 ran alone and committed, k1 met the database down, k2..k4 were not run.
	if errs[0] != nil || !errors.Is(errs[1], errDBDown) {
		t.Fatalf("errs %v", errs)
	}
	for _, err := range errs[2:] {
		if !errors.Is(err, errDBDown) {
			t.Fatalf("errs %v", errs)
		}
	}
	if got := singles.Load(); got != 2 {
		t.Fatalf("%d writes run alone after the database went down, want 2", got)
	}
}

// A write that arrives after Close is refused, not left waiting.
func TestGrouperClosed(t *testing.T) {
	g := newGrouper(2, 8, func(context.Context, []*groupOp) error { return nil }, func(error) bool { return false }, func(error) bool { return false })
	g.close()
	if err := g.do(context.Background(), &groupOp{key: "x"}); !errors.Is(err, errClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// A write whose caller has given up is not run.
func TestGrouperSkipsCanceledWrites(t *testing.T) {
	var ran atomic.Int32
	g := newGrouper(1, 8, func(_ context.Context, ops []*groupOp) error { ran.Add(int32(len(ops))); return nil },
		func(error) bool { return false }, func(error) bool { return false })
	defer g.close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.do(ctx, &groupOp{key: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled write: %v", err)
	}
	if err := g.do(context.Background(), &groupOp{key: "y"}); err != nil || ran.Load() != 1 {
		t.Fatalf("live write: %v, %d run", err, ran.Load())
	}
}
