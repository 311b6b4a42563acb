package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/rosenmesh/rosen/cqrs/exporter"
	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/cqrs/sink"
	"github.com/rosenmesh/rosen/cqrs/source"
)

// pipeline runs an engine from an embedded event store into SQLite, the
// users view exported to hookURL (none when empty).
type pipeline struct {
	eng   *Engine
	store *source.EventStore
	db    sink.Store
}

func runPipeline(t *testing.T, ctx context.Context, hookURL string) *pipeline {
	t.Helper()
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("databases.json", `{"databases":{"views":{"type":"sqlite","dbName":"views.db"}}}`)
	exp := ""
	if hookURL != "" {
		write("exporter.json", fmt.Sprintf(`{"exporter":{"hook":{"type":"restful_api","url":%q}}}`, hookURL))
		exp = `"exporter":["hook"],`
	}
	write("rules.json", `{"rules":[{"event":"userCreated","table":"users","method":"upsert","createTable":true,`+exp+`"mapping":[
	   {"source":"id","target":"id","primary":true,"type":"bigint"},{"source":"name","target":"col_name","type":"text"}]}]}`)
	cfg, err := rules.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{}
	if p.store, err = source.OpenEventStore(ctx, source.JetStreamConfig{DataDir: filepath.Join(dir, "nats")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.store.Close)
	if p.db, err = sink.Open(ctx, cfg.Databases["views"], dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.db.Close() })
	if err := p.db.Prepare(ctx, cfg.Rules); err != nil {
		t.Fatal(err)
	}
	exporters := map[string]exporter.Exporter{}
	if hookURL != "" {
		exporters["hook"], _ = exporter.Open("hook", cfg.Exporters["hook"])
	}
	p.eng, err = New(Options{Config: cfg, Sinks: map[string]*sink.Sink{"views": {Name: "views", Store: p.db}},
		Exporters: exporters, DeadLetters: p.store, Log: zaptest.NewLogger(t), MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	src, err := p.store.Consumer(ctx, "test", nil, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = p.eng.Run(ctx, src) }()
	t.Cleanup(func() { <-done })
	return p
}

func (p *pipeline) publish(t *testing.T, ctx context.Context, data string) uint64 {
	t.Helper()
	seq, err := p.store.Publish(ctx, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func (p *pipeline) users(t *testing.T) string {
	t.Helper()
	rows, err := p.db.(*sink.SQLStore).DB().Query(`SELECT id, col_name FROM users ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d:%s", id, name))
	}
	return strings.Join(got, ",")
}

func (p *pipeline) deadLetters(t *testing.T, ctx context.Context) []jetstream.RawStreamMsg {
	t.Helper()
	dlq, err := p.store.JetStream().Stream(ctx, p.store.Config().DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.RawStreamMsg
	for seq := uint64(1); ; seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			return out
		}
		out = append(out, *m)
	}
}

// TestOversizedDeadLetterDoesNotBlock: an event of an unknown type accepted
// at just under the 1 MB maximum payload cannot be dead-lettered with its
// data beside a reason; it used to be retried forever, so later events were
// never applied. Its letter is now stored without the data, naming it.
func TestOversizedDeadLetterDoesNotBlock(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := runPipeline(t, ctx, "")
	head, tail := `{"type":"zz","payload":{"id":1,"s":"`, `"}}`
	big := p.publish(t, ctx, head+strings.Repeat("a", 1_048_536-len(head)-len(tail))+tail)
	last := p.publish(t, ctx, `{"type":"userCreated","payload":{"id":7,"name":"ann"}}`)
	waitFor(t, "the event after the oversized dead letter", func() bool { return p.eng.Status().LastSeq >= last })
	if got := p.users(t); got != "7:ann" {
		t.Fatalf("users = %s", got)
	}
	letters := p.deadLetters(t, ctx)
	if len(letters) != 1 || letters[0].Header.Get("Rosen-Seq") != fmt.Sprint(big) || letters[0].Header.Get("Rosen-Event-Type") != "zz" ||
		!strings.Contains(letters[0].Header.Get("Rosen-Reason"), `no rule for event type "zz"`) {
		t.Fatalf("dead letters = %+v", letters)
	}
}

// TestPermanentExportFailureIsDeadLettered: an endpoint that answers 400 for
// one record used to be retried forever, blocking every later event. The
// batch is narrowed down record by record: the refused one is dead-lettered
// with the exporter's name and the answer, the others are exported, and
// the pipeline goes on. A 503 is still retried until it passes.
func TestPermanentExportFailureIsDeadLettered(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []string
	unavailable := 3
	rest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var recs []exporter.Record
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &recs); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rec := range recs {
			if rec.Row["col_name"] == "bad" {
				http.Error(w, "col_name: bad is not a name", http.StatusBadRequest)
				return
			}
			if rec.Row["col_name"] == "later" && unavailable > 0 {
				unavailable--
				http.Error(w, "try again", http.StatusServiceUnavailable)
				return
			}
		}
		for _, rec := range recs {
			got = append(got, rec.Row["col_name"].(string))
		}
	}))
	defer rest.Close()
	p := runPipeline(t, ctx, rest.URL)
	var last uint64
	for i, name := range []string{"ann", "bad", "bob", "later"} {
		last = p.publish(t, ctx, fmt.Sprintf(`{"type":"userCreated","payload":{"id":%d,"name":%q}}`, i+1, name))
	}
	waitFor(t, "the last event", func() bool { return p.eng.Status().LastSeq >= last })
	if users := p.users(t); users != "1:ann,2:bad,3:bob,4:later" {
		t.Fatalf("users = %s", users)
	}
	mu.Lock()
	if fmt.Sprint(got) != "[ann bob later]" {
		t.Errorf("exported %v", got)
	}
	mu.Unlock()
	letters := p.deadLetters(t, ctx)
	if len(letters) != 1 || letters[0].Header.Get("Rosen-Seq") != "2" || letters[0].Header.Get("Rosen-Rule") != "users" {
		t.Fatalf("dead letters = %+v", letters)
	}
	if r := letters[0].Header.Get("Rosen-Reason"); !strings.Contains(r, "exporter hook") || !strings.Contains(r, "400") || !strings.Contains(r, "bad is not a name") {
		t.Fatalf("reason = %q", r)
	}
}
