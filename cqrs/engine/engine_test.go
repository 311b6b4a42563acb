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
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/rosenmesh/rosen/cqrs/exporter"
	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/cqrs/sink"
	"github.com/rosenmesh/rosen/cqrs/source"
)

// waitFor polls cond until it holds (no timing assertion: the deadline only
// keeps a broken build from hanging).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPipelineEmbeddedJetStreamToSQLite(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var exported []exporter.Record
	rest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var recs []exporter.Record
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &recs); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		exported = append(exported, recs...)
		mu.Unlock()
	}))
	defer rest.Close()
	write("databases.json", `{"databases":{"views":{"type":"sqlite","dbName":"views.db"}}}`)
	write("exporter.json", fmt.Sprintf(`{"exporter":{"hook":{"type":"restful_api","url":%q}}}`, rest.URL))
	write("rules.json", `{"rules":[
	 {"event":"userCreated","table":"users","method":"upsert","createTable":true,"exporter":["hook"],"mapping":[
	   {"source":"id","target":"id","primary":true,"type":"bigint"},{"source":"name","target":"col_name","type":"text"}]},
	 {"event":"userDeleted","table":"users","method":"delete","mapping":[{"source":"id","target":"id","primary":true}]}]}`)
	cfg, err := rules.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := source.OpenEventStore(ctx, source.JetStreamConfig{DataDir: filepath.Join(dir, "nats"), Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	db, err := sink.Open(ctx, cfg.Databases["views"], dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Prepare(ctx, cfg.Rules); err != nil {
		t.Fatal(err)
	}
	hook, _ := exporter.Open("hook", cfg.Exporters["hook"])
	eng, err := New(Options{Config: cfg, Sinks: map[string]*sink.Sink{"views": {Name: "views", Store: db}},
		Exporters: map[string]exporter.Exporter{"hook": hook}, DeadLetters: store, Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	events := []string{
		`{"id":"1","type":"userCreated","key":"1","payload":{"id":1,"name":"ann"}}`,
		`{"id":"2","type":"userCreated","key":"2","payload":{"id":2,"name":"bob"}}`,
		`{"id":"3","type":"userDeleted","key":"1","payload":{"id":1}}`,
		`{"id":"4","type":"userCreated","key":"3","payload":{"name":"no id"}}`, // missing key → dead letter
		`{"id":"5","type":"userExploded","key":"3","payload":{"id":3}}`,        // unknown type → dead letter
		`{"id":"6","type":"userCreated","key":"4","payload":{"id":"four"}}`,    // type mismatch → dead letter
	}
	var last uint64
	for _, e := range events {
		if last, err = store.Publish(ctx, []byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Publish(ctx, []byte(`{"type":`)); err == nil {
		t.Fatal("publishing malformed JSON must fail")
	}
	src, err := store.Consumer(ctx, "test", nil, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx, src) }()
	waitFor(t, "the last event", func() bool { return eng.Status().LastSeq >= last })
	rows, err := db.(*sink.SQLStore).DB().QueryContext(ctx, `SELECT id, col_name FROM users ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d:%s", id, name))
	}
	rows.Close()
	if fmt.Sprint(got) != "[2:bob]" {
		t.Fatalf("users = %v", got)
	}
	n, err := store.DeadLetterCount(ctx)
	if err != nil || n != 3 {
		t.Fatalf("dead letters = %d %v (status %+v)", n, err, eng.Status())
	}
	mu.Lock()
	// Keys 1 and 2 are in different partitions, committed side by side:
	// only the order within a key is defined.
	byKey := map[string]exporter.Record{}
	for _, r := range exported {
		byKey[r.Key] = r
	}
	if len(exported) != 2 || byKey["1"].Row["col_name"] != "ann" || byKey["2"].Row["col_name"] != "bob" {
		t.Errorf("exported = %+v", exported)
	}
	mu.Unlock()
	cancel()
	<-done
}
