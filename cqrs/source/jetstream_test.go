package source

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

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

// TestPullGapStartsAgainFromAckFloor: a delivery sequence that skips (a
// message lost on the way, as on a reconnect) stops delivery there, since
// acknowledging past it would acknowledge the lost message; once what was
// handed out is acknowledged, the consumer starts again from its ack floor
// and the events after the floor come again, in order.
func TestPullGapStartsAgainFromAckFloor(t *testing.T) {
	ctx := context.Background()
	store, err := OpenEventStore(ctx, JetStreamConfig{DataDir: filepath.Join(t.TempDir(), "nats"), Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for i := range 6 {
		if _, err := store.Publish(ctx, fmt.Appendf(nil, `{"type":"t","key":"k%d","payload":{"n":%d}}`, i, i)); err != nil {
			t.Fatal(err)
		}
	}
	src, err := store.Consumer(ctx, store.ConsumerName([]int{0, 1}), []int{0, 1}, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	j := src.(*jsPull)
	if j.name != "rosen-cqrs-all" {
		t.Fatalf("consumer of every partition is named %q", j.name)
	}
	first, err := src.Next(ctx, 2)
	if err != nil || len(first.Msgs) != 2 || first.Msgs[0].Seq != 1 || first.Msgs[1].Seq != 2 {
		t.Fatalf("first batch: %+v %v", first.Msgs, err)
	}
	// Wait until every stored event is buffered, then a message arrives whose
	// delivery sequence skips one.
	for {
		j.mu.Lock()
		n, sub, last := len(j.buf), j.sub, j.lastDSeq
		j.mu.Unlock()
		if n == 4 {
			j.onMsg(&nats.Msg{Sub: sub, Subject: "rosen.cqrs.events.0.t", Data: []byte(`{"type":"t","payload":{}}`),
				Reply: fmt.Sprintf("$JS.ACK.ROSEN_CQRS.rosen-cqrs-all.1.%d.%d.0.0", 99, last+2)})
			break
		}
		time.Sleep(time.Millisecond)
	}
	// What came before the gap is handed out; the rest waits for the acknowledgements.
	second, err := src.Next(ctx, 10)
	if err != nil || len(second.Msgs) != 4 || second.Msgs[3].Seq != 6 {
		t.Fatalf("second batch: %+v %v", second.Msgs, err)
	}
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	next := make(chan Batch, 1)
	go func() {
		b, err := src.Next(ctx, 10)
		if err != nil {
			t.Error(err)
		}
		next <- b
	}()
	// Had it started again before the second batch's acknowledgement, it
	// would start after 2 and hand out 3-6 again.
	if _, err := store.Publish(ctx, []byte(`{"type":"t","key":"k6","payload":{"n":6}}`)); err != nil {
		t.Fatal(err)
	}
	if err := second.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	b := <-next
	var seqs []uint64
	for _, m := range b.Msgs {
		seqs = append(seqs, m.Seq)
	}
	if fmt.Sprint(seqs) != "[7]" {
		t.Fatalf("after the gap got %v, want [7] (the consumer starts again after its ack floor, 6)", seqs)
	}
}

// TestConsumerOfAllPartitionsStartsAfterTheirFloors: a worker that took its
// partitions one consumer each (or a previous release) and now takes them
// all with one consumer starts after the lowest of their ack floors.
func TestConsumerOfAllPartitionsStartsAfterTheirFloors(t *testing.T) {
	ctx := context.Background()
	store, err := OpenEventStore(ctx, JetStreamConfig{DataDir: filepath.Join(t.TempDir(), "nats"), Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	byPartition := map[int][]uint64{}
	for i := range 20 {
		key := fmt.Sprint("k", i)
		seq, err := store.Publish(ctx, fmt.Appendf(nil, `{"type":"t","key":%q,"payload":{}}`, key))
		if err != nil {
			t.Fatal(err)
		}
		byPartition[Partition(key, 2)] = append(byPartition[Partition(key, 2)], seq)
	}
	if len(byPartition[0]) < 3 || len(byPartition[1]) < 3 {
		t.Fatalf("keys fall in one partition: %v", byPartition)
	}
	floors := map[int]uint64{}
	for p, n := range map[int]int{0: 3, 1: 2} { // partition 0 acknowledged up to its 3rd event, 1 up to its 2nd
		src, err := store.Consumer(ctx, store.ConsumerName([]int{p}), []int{p}, time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		b, err := src.Next(ctx, n)
		if err != nil || len(b.Msgs) != n {
			t.Fatalf("partition %d: %d %v", p, len(b.Msgs), err)
		}
		if err := b.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		floors[p] = b.Msgs[n-1].Seq
		_ = src.Close()
	}
	want := min(floors[0], floors[1])
	if got, err := store.AckFloor(ctx, 2); err != nil || got != want {
		t.Fatalf("AckFloor = %d %v, want %d", got, err, want)
	}
	src, err := store.Consumer(ctx, store.ConsumerName([]int{0, 1}), []int{0, 1}, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b, err := src.Next(ctx, 1)
	if err != nil || b.Msgs[0].Seq != want+1 {
		t.Fatalf("the consumer of all partitions starts at %d (%v), want %d", b.Msgs[0].Seq, err, want+1)
	}
}
