package sink

import (
	"context"
	"errors"
	"testing"
)

func TestSnapshotRestoreThenReplay(t *testing.T) {
	ctx := context.Background()
	for dialect, st := range stores(t) {
		t.Run(dialect, func(t *testing.T) {
			h := newHarness(t, dialect, st)
			t.Cleanup(func() { dropTable(st, snapTable(h.table)) })
			if _, err := RestoreView(ctx, st, h.table, h.table); !errors.Is(err, ErrNoSnapshot) {
				t.Fatalf("restore without snapshot: %v", err)
			}
			before := []Op{
				h.op(`{"type":"userCreated","payload":{"id":1,"name":"one"}}`),
				h.op(`{"type":"userCreated","payload":{"id":2,"name":"two"}}`),
			}
			if _, _, err := h.sink.Apply(ctx, before); err != nil {
				t.Fatal(err)
			}
			if err := SnapshotView(ctx, st, h.table, h.table, h.seq); err != nil {
				t.Fatal(err)
			}
			after := []Op{
				h.op(`{"type":"userDeleted","payload":{"id":1}}`),
				h.op(`{"type":"userRenamed","payload":{"id":2,"name":"two renamed"}}`),
			}
			if _, _, err := h.sink.Apply(ctx, after); err != nil {
				t.Fatal(err)
			}
			h.query(st, "DELETE FROM TABLE") // the view breaks
			seq, err := RestoreView(ctx, st, h.table, h.table)
			if err != nil || seq != before[1].Seq {
				t.Fatalf("restore: seq %d, %v", seq, err)
			}
			if got := h.rows(st, "SELECT id, name FROM TABLE ORDER BY id"); got != "1:one|2:two" {
				t.Fatalf("restored rows = %s", got)
			}
			// Replaying from the snapshot's sequence: the old events are skipped, the later ones applied.
			res, _, err := h.sink.Apply(ctx, append(before, after...))
			if err != nil || res.Skipped != 2 || res.Applied != 2 {
				t.Fatalf("replay: %+v %v", res, err)
			}
			if got := h.rows(st, "SELECT id, name FROM TABLE ORDER BY id"); got != "2:two renamed" {
				t.Fatalf("rows after replay = %s", got)
			}
		})
	}
}
