package service

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	_ "modernc.org/sqlite"

	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/cqrs/source"
	"github.com/rosenmesh/rosen/internal/testenv"
)

func openService(t *testing.T, sources ...string) (*Service, string) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"databases.json": `{"databases":{"views":{"type":"sqlite","dbName":"views.db"}}}`,
		"rules.json": `{"rules":[{"event":"orderPlaced","table":"orders","createTable":true,"mapping":[
		  {"source":"order.id","target":"id","primary":true,"type":"bigint"},{"source":"order.total","target":"total","type":"decimal"}]}]}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files, err := rules.DirFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := Open(context.Background(), Options{Files: files, DataDir: dir, Sources: sources})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc, dir
}

func orders(t *testing.T, dir string) string {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "views.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, total FROM orders ORDER BY id`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id int64
		var total string
		_ = rows.Scan(&id, &total)
		out = append(out, fmt.Sprintf("%d=%s", id, total))
	}
	return strings.Join(out, ",")
}

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

func TestHTTPPublishValidatesAndStores(t *testing.T) {
	svc, dir := openService(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = svc.Run(ctx) }()
	h := svc.Handler()
	post := func(path, body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		return rec
	}
	for _, bad := range []string{`{"type":`, `[{"type":"orderPlaced","payload":{}}, {"payload":{}}]`, `{"type":"x","payload":[1]}`, `not json`} {
		if rec := post("/api/cqrs/events", bad); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, rec.Code, rec.Body)
		}
	}
	rec := post("/api/cqrs/events", `[{"type":"orderPlaced","payload":{"order":{"id":1,"total":0.1}}},{"type":"orderPlaced","payload":{"order":{"id":2,"total":12345678901234567890.25}}}]`)
	if rec.Code != http.StatusAccepted || !strings.Contains(rec.Body.String(), `"seqs":[1,2]`) {
		t.Fatalf("publish: %d %s (the bad array must have stored nothing)", rec.Code, rec.Body)
	}
	waitFor(t, "orders", func() bool { return orders(t, dir) == "1=0.1,2=12345678901234567890.25" })
	if rec := post("/api/cqrs/replay?view=orders&from=yesterday", ""); rec.Code != http.StatusBadRequest {
		t.Errorf("bad --from: %d", rec.Code)
	}
	if rec := post("/api/cqrs/replay?view=orders&from=2", ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"events":1`) {
		t.Errorf("replay from 2: %d %s", rec.Code, rec.Body)
	}
	if got := orders(t, dir); got != "1=0.1,2=12345678901234567890.25" {
		t.Errorf("after replay: %s", got)
	}
	status := httptest.NewRecorder()
	h.ServeHTTP(status, httptest.NewRequest(http.MethodGet, "/api/cqrs/status", nil))
	if !strings.Contains(status.Body.String(), `"storeLastSeq":2`) {
		t.Errorf("status: %s", status.Body)
	}
	// A form body (curl -d without a Content-Type header) is refused, as the
	// transaction API refuses it; wrong methods and paths answer in JSON.
	form := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/api/cqrs/events", strings.NewReader(`{"type":"orderPlaced","payload":{"order":{"id":3,"total":1}}}`))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(form, req)
	if form.Code != http.StatusUnsupportedMediaType || !strings.Contains(form.Body.String(), `"error"`) {
		t.Errorf("form body: %d %s", form.Code, form.Body)
	}
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/api/cqrs/events", http.StatusMethodNotAllowed},
		{http.MethodPost, "/api/cqrs/status", http.StatusMethodNotAllowed},
		{http.MethodGet, "/api/cqrs/nope", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		var v map[string]string
		if rec.Code != tc.code || json.Unmarshal(rec.Body.Bytes(), &v) != nil || v["error"] == "" {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, rec.Code, rec.Body)
		}
	}
	if got := orders(t, dir); got != "1=0.1,2=12345678901234567890.25" {
		t.Errorf("the refused form body was stored: %s", got)
	}
}

func TestRabbitMQSourceIntoView(t *testing.T) {
	url := testenv.RabbitMQURL(t)
	queue := testenv.UniqueName("cqrs_orders")
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = ch.QueueDelete(queue, false, false, false) }()
	svc, dir := openService(t, url+"?queue="+queue)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = svc.Run(ctx) }()
	for i, body := range []string{`{"type":"orderPlaced","payload":{"order":{"id":7,"total":9007199254740993}}}`, `{"type":`, `{"type":"orderPlaced","payload":{"order":{"id":8,"total":"0.30"}}}`} {
		if err := ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
			t.Fatal(i, err)
		}
	}
	waitFor(t, "orders from RabbitMQ", func() bool { return orders(t, dir) == "7=9007199254740993,8=0.30" })
	waitFor(t, "the malformed message's dead letter", func() bool {
		n, _ := svc.EventStore().DeadLetterCount(ctx)
		return n == 1
	})
}

func TestSnapshotThenReplayFromIt(t *testing.T) {
	svc, dir := openService(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = svc.Run(ctx) }()
	publish := func(body string) uint64 {
		seq, err := svc.Publish(ctx, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	publish(`{"type":"orderPlaced","payload":{"order":{"id":1,"total":"1.00"}}}`)
	last := publish(`{"type":"orderPlaced","payload":{"order":{"id":2,"total":"2.00"}}}`)
	waitFor(t, "the first events", func() bool { return svc.engine.Status().LastSeq >= last })
	var seq uint64
	waitFor(t, "the ack floor", func() bool {
		var err error
		seq, err = svc.Snapshot(ctx, "orders")
		return err == nil && seq >= last
	})
	last = publish(`{"type":"orderPlaced","payload":{"order":{"id":1,"total":"1.50"}}}`)
	waitFor(t, "the later event", func() bool { return svc.engine.Status().LastSeq >= last })
	db, err := sql.Open("sqlite", filepath.Join(dir, "views.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM orders`); err != nil { // the view breaks
		t.Fatal(err)
	}
	res, err := svc.ReplayFromSnapshot(ctx, "orders")
	if err != nil || res.From != seq+1 || res.Events != 1 {
		t.Fatalf("replay from snapshot: %+v %v", res, err)
	}
	if got := orders(t, dir); got != "1=1.50,2=2.00" {
		t.Fatalf("orders = %s", got)
	}
	if _, err := svc.Snapshot(ctx, "nope"); !errors.Is(err, ErrUnknownView) {
		t.Fatalf("unknown view: %v", err)
	}
}

// TestHTTPPublishTooLarge: an event over the event store's maximum message
// size (1 MB, below the 16 MB body limit) is 413 naming its index, and an
// array holding one stores nothing. It used to be 503 after the events
// before it were stored, so a client retrying the array stored them twice.
func TestHTTPPublishTooLarge(t *testing.T) {
	svc, _ := openService(t)
	h := svc.Handler()
	post := func(body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/cqrs/events", strings.NewReader(body)))
		return rec
	}
	sized := func(id string, size int) string {
		head, tail := `{"type":"orderPlaced",`+id+`"payload":{"order":{"id":1},"s":"`, `"}}`
		return head + strings.Repeat("a", size-len(head)-len(tail)) + tail
	}
	limit := int(svc.EventStore().MaxEventSize())
	small := `{"type":"orderPlaced","payload":{"order":{"id":1,"total":1}}}`
	for _, body := range []string{"[" + small + "," + sized("", 1_100_000) + "]", "[" + small + "," + sized(`"id":"x1",`, limit-5) + "]"} {
		rec := post(body)
		if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "event 1:") {
			t.Errorf("array with a large event: %d %.200s", rec.Code, rec.Body)
		}
	}
	if rec := post(sized("", 1_100_000)); rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "too large") {
		t.Errorf("single large event: %d %.200s", rec.Code, rec.Body)
	}
	if seq, err := svc.EventStore().LastSeq(context.Background()); err != nil || seq != 0 {
		t.Fatalf("stored %d events (%v)", seq, err)
	}
	if rec := post("[" + small + "," + sized("", limit) + "]"); rec.Code != http.StatusAccepted || !strings.Contains(rec.Body.String(), `"seqs":[1,2]`) {
		t.Errorf("an event of exactly the limit: %d %.200s", rec.Code, rec.Body)
	}
}

// TestRecreatedEventStoreIsRefused: the embedded event store is recreated
// (a new --data) against a view database that kept its offsets. The new
// store's sequences start again at 1, so its events used to be skipped as
// redeliveries without a word. The service now refuses to start, saying how
// to reset; after the documented reset the new events are applied.
func TestRecreatedEventStoreIsRefused(t *testing.T) {
	svc, dir := openService(t)
	files, err := rules.DirFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	run := func(svc *Service, body string, want string) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = svc.Run(ctx) }()
		if _, err := svc.Publish(ctx, []byte(body)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, want, func() bool { return orders(t, dir) == want })
		cancel()
		<-done
		svc.Close()
	}
	run(svc, `{"type":"orderPlaced","payload":{"order":{"id":1,"total":"1.00"}}}`, "1=1.00")
	svc, err = Open(context.Background(), Options{Files: files, DataDir: dir}) // the same store: its identity is kept
	if err != nil {
		t.Fatalf("reopening the same event store: %v", err)
	}
	run(svc, `{"type":"orderPlaced","payload":{"order":{"id":2,"total":"2.00"}}}`, "1=1.00,2=2.00")

	if err := os.RemoveAll(filepath.Join(dir, "cqrs-nats")); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), Options{Files: files, DataDir: dir})
	if !errors.Is(err, ErrStoreChanged) || !strings.Contains(err.Error(), "DELETE FROM rosen_cqrs_offsets WHERE view_name IN ('orders', '#store:orders')") {
		t.Fatalf("a recreated event store must be refused with how to reset: %v", err)
	}
	t.Log(err)
	db, err := sql.Open("sqlite", filepath.Join(dir, "views.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM rosen_cqrs_offsets WHERE view_name IN ('orders', '#store:orders') AND (lane LIKE 'js:ROSEN_CQRS:%' OR lane LIKE 'js:ROSEN_CQRS@%')`); err != nil {
		t.Fatal(err)
	}
	svc, err = Open(context.Background(), Options{Files: files, DataDir: dir})
	if err != nil {
		t.Fatalf("after the reset: %v", err)
	}
	run(svc, `{"type":"orderPlaced","payload":{"order":{"id":3,"total":"3.00"}}}`, "1=1.00,2=2.00,3=3.00")
}

// GET /api/cqrs/dead-letters lists the stored letters, newest first, with
// their reason and event; a fresh-user trial found them only in the log.
func TestDeadLettersAreListed(t *testing.T) {
	svc, _ := openService(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = svc.Run(ctx) }()
	var seqs []uint64
	for _, id := range []string{`"a"`, `"b"`, `7`, `"c"`} {
		seq, err := svc.Publish(ctx, []byte(`{"type":"orderPlaced","payload":{"order":{"id":`+id+`,"total":1}}}`))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	waitFor(t, "three dead letters", func() bool {
		n, _ := svc.EventStore().DeadLetterCount(ctx)
		return n == 3
	})
	h := svc.Handler()
	list := func(query string, code int) []source.Letter {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/cqrs/dead-letters"+query, nil))
		if rec.Code != code {
			t.Fatalf("%s: %d %s", query, rec.Code, rec.Body)
		}
		var v struct{ DeadLetters []source.Letter }
		_ = json.Unmarshal(rec.Body.Bytes(), &v)
		return v.DeadLetters
	}
	page := list("?limit=2", http.StatusOK)
	if len(page) != 2 || page[0].EventSeq != seqs[3] || page[1].EventSeq != seqs[1] ||
		!strings.Contains(page[0].Reason, "not an integer") || !strings.Contains(string(page[0].Event), `"c"`) || page[0].Rule == "" {
		t.Fatalf("first page: %+v", page)
	}
	rest := list(fmt.Sprintf("?before=%d", page[1].Seq), http.StatusOK)
	if len(rest) != 1 || rest[0].EventSeq != seqs[0] {
		t.Fatalf("next page: %+v", rest)
	}
	if all := list("?view="+page[0].Rule, http.StatusOK); len(all) != 3 {
		t.Fatalf("by view %s: %+v", page[0].Rule, all)
	}
	list("?view=nope", http.StatusNotFound)
	list("?limit=0", http.StatusBadRequest)
	list("?before=x", http.StatusBadRequest)
}
