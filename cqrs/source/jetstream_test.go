package source

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rosenmesh/rosen/cqrs/event"
)

// TestEmbeddedRestartRedeliversUnackedInOrder: the embedded server restarts
// (a broker restart) with a batch delivered but not acknowledged; the
// consumer starts again at its ack floor, so that batch comes first, in order.
func TestEmbeddedRestartRedeliversUnackedInOrder(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "nats")
	store, err := OpenEventStore(ctx, JetStreamConfig{DataDir: dir, Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := store.Publish(ctx, fmt.Appendf(nil, `{"id":"e%d","type":"t","key":"k","payload":{"n":%d}}`, i, i)); err != nil {
			t.Fatal(err)
		}
	}
	if seq, err := store.Publish(ctx, []byte(`{"id":"e1","type":"t","key":"k","payload":{"n":1}}`)); err != nil || seq != 2 {
		t.Fatalf("a duplicate id must be deduplicated to its first sequence: %d %v", seq, err)
	}
	src, err := store.Consumer(ctx, "c", nil, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	b, err := src.Next(ctx, 2)
	if err != nil || len(b.Msgs) != 2 {
		t.Fatalf("first batch: %d %v", len(b.Msgs), err)
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err = src.Next(ctx, 3); err != nil || len(b.Msgs) != 3 { // delivered, never acknowledged
		t.Fatalf("second batch: %d %v", len(b.Msgs), err)
	}
	_ = src.Close()
	store.Close()

	store, err = OpenEventStore(ctx, JetStreamConfig{DataDir: dir, Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	src, err = store.Consumer(ctx, "c", nil, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var seqs []uint64
	for len(seqs) < 4 {
		b, err := src.Next(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range b.Msgs {
			if _, err := event.Decode(m.Data); err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, m.Seq)
		}
	}
	if fmt.Sprint(seqs) != "[3 4 5 6]" {
		t.Fatalf("after restart got %v, want [3 4 5 6]", seqs)
	}
	if _, err := store.Publish(ctx, []byte(`{"payload":{}}`)); !errors.Is(err, event.ErrNoType) {
		t.Fatalf("publishing an envelope without type: %v", err)
	}
	if _, err := store.Consumer(ctx, "bad", []int{7}, time.Millisecond); !errors.Is(err, ErrConfig) {
		t.Fatalf("partition out of range: %v", err)
	}
}
