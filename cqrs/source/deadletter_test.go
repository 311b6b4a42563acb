package source

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// bigEvent is an envelope of exactly size bytes: {"type":typ,"key":"k9","payload":{"id":1,"s":"aaa…"}}.
func bigEvent(typ string, size int) []byte {
	head, tail := `{"type":"`+typ+`","key":"k9","payload":{"id":1,"s":"`, `"}}`
	return []byte(head + strings.Repeat("a", size-len(head)-len(tail)) + tail)
}

// TestDeadLetterThatDoesNotFit: an event accepted at just under the maximum
// payload cannot travel in a dead letter beside its reason; the letter is
// stored without the data but naming the event, instead of failing forever
// (which blocked the pipeline). A reason quoting a huge value is cut.
func TestDeadLetterThatDoesNotFit(t *testing.T) {
	ctx := context.Background()
	store, err := OpenEventStore(ctx, JetStreamConfig{DataDir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	data := bigEvent("zz", 1_048_536)
	seq, err := store.Publish(ctx, data)
	if err != nil {
		t.Fatalf("the event itself fits: %v", err)
	}
	huge := `invalid input syntax for type bigint: "` + strings.Repeat("9", 600_000) + `"`
	if err := store.DeadLetter(ctx, "", seq, huge, data); err != nil {
		t.Fatal(err)
	}
	small := []byte(`{"type":"zz","payload":{"id":2}}`)
	if err := store.DeadLetter(ctx, "v", seq+1, `no rule for event type "zz"`, small); err != nil {
		t.Fatal(err)
	}
	dlq, err := store.JetStream().Stream(ctx, store.Config().DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dlq.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	h := m.Header
	if len(m.Data) != 0 || h.Get("Rosen-Omitted") == "" || h.Get("Rosen-Seq") != strconv.FormatUint(seq, 10) ||
		h.Get("Rosen-Size") != strconv.Itoa(len(data)) || h.Get("Rosen-Event-Type") != "zz" || h.Get("Rosen-Event-Key") != "k9" ||
		h.Get("Rosen-Stream") != "ROSEN_CQRS" {
		t.Fatalf("oversized letter: %d bytes, headers %v", len(m.Data), h)
	}
	if r := h.Get("Rosen-Reason"); len(r) > MaxReason || !strings.HasSuffix(r, "(truncated)") || !strings.HasPrefix(r, "invalid input syntax") {
		t.Fatalf("reason of %d bytes: %.80q…", len(r), r)
	}
	m, err = dlq.GetMsg(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != string(small) || m.Header.Get("Rosen-Omitted") != "" || m.Header.Get("Rosen-Reason") != `no rule for event type "zz"` {
		t.Fatalf("a letter that fits keeps its event and reason: %s %v", m.Data, m.Header)
	}
}
