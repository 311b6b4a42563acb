// Package crashtest proves that views equal the fold of the event log when
// workers are SIGKILLed at random moments while events stream in.
package crashtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rosenmesh/rosen/cqrs/event"
	"github.com/rosenmesh/rosen/cqrs/source"
	"github.com/rosenmesh/rosen/internal/testenv"
)

func crashTimeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("ROSEN_CQRS_CRASH_TIMEOUT")); err == nil {
		return d
	}
	return 5 * time.Minute
}

type row struct {
	name, email, balance *string
}

func str(s string) *string { return &s }

func TestCrashWorkersWhileEventsStream(t *testing.T) {
	total := 100_000
	if v := os.Getenv("ROSEN_CQRS_CRASH_EVENTS"); v != "" {
		total, _ = strconv.Atoi(v)
	}
	if testing.Short() {
		total = 10_000
	}
	pgURL := testenv.PostgresDSN(t)
	natsURL := testenv.NATSURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), crashTimeout())
	defer cancel()

	name := testenv.UniqueName("crash")
	dir := t.TempDir()
	table := name + "_users"
	stream := "CQRS_" + name
	subject := "cqrs." + name
	writeFile(t, filepath.Join(dir, "databases.json"), fmt.Sprintf(`{"databases":{"pg":{"type":"postgres","dsn":%q}}}`, pgURL))
	writeFile(t, filepath.Join(dir, "rules.json"), fmt.Sprintf(`{"rules":[
	 {"event":"userCreated","table":%[1]q,"method":"upsert","createTable":true,"mapping":[
	   {"source":"id","target":"id","primary":true,"type":"bigint"},{"source":"name","target":"name","type":"text"},
	   {"source":"email","target":"email","type":"text"},{"source":"balance","target":"balance","type":"numeric"}]},
	 {"event":"userRenamed","table":%[1]q,"method":"update","mapping":[{"source":"id","target":"id","primary":true},{"source":"name","target":"name"}]},
	 {"event":"userDeleted","table":%[1]q,"method":"delete","mapping":[{"source":"id","target":"id","primary":true}]}]}`, table))

	store, err := source.OpenEventStore(ctx, source.JetStreamConfig{URL: natsURL, Stream: stream, Subject: subject, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	js := store.JetStream()
	defer func() {
		_ = js.DeleteStream(context.Background(), stream)
		_ = js.DeleteStream(context.Background(), stream+"_DLQ")
		if c, err := pgx.Connect(context.Background(), pgURL); err == nil {
			_, _ = c.Exec(context.Background(), `DROP TABLE IF EXISTS "`+table+`"`)
			_, _ = c.Exec(context.Background(), `DELETE FROM rosen_cqrs_offsets WHERE view_name = $1 OR view_name = $2`, table, "#store:"+table) // the view's offsets and its event store's id (service.storeView)
			_ = c.Close(context.Background())
		}
	}()

	bin := filepath.Join(dir, "worker")
	if out, err := exec.Command("go", "build", "-o", bin, "./worker").CombinedOutput(); err != nil {
		t.Fatalf("build worker: %v\n%s", err, out)
	}
	var mu sync.Mutex
	procs := make([]*exec.Cmd, 2)
	startWorker := func(i int) {
		cmd := exec.Command(bin, "-rules-dir", dir, "-data", dir, "-nats-url", natsURL, "-stream", stream, "-subject", subject,
			"-partitions", "2", "-worker", strconv.Itoa(i), "-workers", "2", "-batch", "1000")
		logf, _ := os.OpenFile(filepath.Join(dir, fmt.Sprintf("worker%d.log", i)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Error(err)
			return
		}
		procs[i] = cmd
		go func() { _ = cmd.Wait(); _ = logf.Close() }()
	}
	startWorker(0)
	startWorker(1)
	defer func() {
		mu.Lock()
		for _, p := range procs {
			if p != nil && p.Process != nil {
				_ = p.Process.Signal(syscall.SIGTERM)
			}
		}
		mu.Unlock()
	}()

	// Kill a random worker at random moments while events stream in.
	kills := 0
	publishing := make(chan struct{})
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		for {
			select {
			case <-publishing:
				return
			case <-time.After(time.Duration(300+rand.IntN(1500)) * time.Millisecond):
			}
			mu.Lock()
			i := rand.IntN(2)
			_ = procs[i].Process.Signal(syscall.SIGKILL)
			kills++
			startWorker(i)
			mu.Unlock()
		}
	}()

	const users = 5000
	for n := 0; n < total; n++ {
		id := rand.IntN(users) + 1
		var typ string
		payload := map[string]any{"id": id}
		switch r := rand.IntN(100); {
		case r < 45:
			typ = "userCreated"
			payload["name"] = fmt.Sprintf("user %d v%d ✓", id, n)
			if rand.IntN(3) > 0 {
				payload["email"] = fmt.Sprintf("u%d-%d@example.com", id, n)
			}
			payload["balance"] = json.Number(fmt.Sprintf("%d.%02d", rand.IntN(1_000_000), rand.IntN(100)))
		case r < 85:
			typ = "userRenamed"
			payload["name"] = fmt.Sprintf("renamed %d at %d", id, n)
		default:
			typ = "userDeleted"
		}
		key := strconv.Itoa(id)
		data, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("%s-%d", name, n), "type": typ, "key": key, "payload": payload})
		if _, err := js.PublishAsync(store.SubjectFor(typ, key), data); err != nil {
			t.Fatal(err)
		}
		if n%2000 == 1999 {
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				t.Fatal("publishing timed out")
			}
			time.Sleep(20 * time.Millisecond) // keep the stream flowing across several kills
		}
	}
	<-js.PublishAsyncComplete()
	close(publishing)
	<-killerDone
	last, err := store.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Wait until both partitions are acknowledged up to the end.
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	for p := range 2 {
		for {
			c, err := st.Consumer(ctx, "rosen-cqrs-p"+strconv.Itoa(p))
			if err == nil {
				info, err := c.Info(ctx)
				if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream > 0 {
					break
				}
			}
			if ctx.Err() != nil {
				for i := range 2 {
					logs, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("worker%d.log", i)))
					t.Logf("worker %d log (tail):\n%s", i, tail(logs, 3000))
				}
				t.Fatalf("partition %d did not catch up", p)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The fold of the event log, computed here independently of the engine.
	want := map[int64]row{}
	oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	read := uint64(0)
	for read < last {
		batch, err := oc.Fetch(5000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			read++
			ev, err := event.Decode(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			id, _ := ev.Payload["id"].(json.Number).Int64()
			switch ev.Type {
			case "userCreated":
				r := row{name: str(ev.Payload["name"].(string)), balance: str(ev.Payload["balance"].(json.Number).String())}
				if e, ok := ev.Payload["email"].(string); ok {
					r.email = str(e)
				}
				want[id] = r
			case "userRenamed":
				r := want[id]
				r.name = str(ev.Payload["name"].(string))
				want[id] = r
			case "userDeleted":
				delete(want, id)
			}
		}
	}

	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, name, email, balance::text FROM "`+table+`" ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]row{}
	for rows.Next() {
		var id int64
		var r row
		if err := rows.Scan(&id, &r.name, &r.email, &r.balance); err != nil {
			t.Fatal(err)
		}
		got[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	mismatches := 0
	for id, w := range want {
		g, ok := got[id]
		if !ok || !eq(g.name, w.name) || !eq(g.email, w.email) || !eq(g.balance, w.balance) {
			mismatches++
			if mismatches <= 5 {
				t.Errorf("row %d: got %s, want %s", id, show(g), show(w))
			}
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			mismatches++
			if mismatches <= 10 {
				t.Errorf("row %d is in the view but not in the fold", id)
			}
		}
	}
	dead, _ := store.DeadLetterCount(ctx)
	t.Logf("crash test: %d events published (stream last seq %d), %d SIGKILLs, fold has %d rows, view has %d rows, %d mismatches, %d dead letters",
		total, last, kills, len(want), len(got), mismatches, dead)
	fmt.Printf("cqrs crash test: events=%d kills=%d fold_rows=%d view_rows=%d mismatches=%d dead_letters=%d\n", total, kills, len(want), len(got), mismatches, dead)
	if dead != 0 {
		t.Errorf("%d dead letters, want 0", dead)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func eq(a, b *string) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }

func show(r row) string {
	s := func(p *string) string {
		if p == nil {
			return "NULL"
		}
		return *p
	}
	return fmt.Sprintf("{%s %s %s}", s(r.name), s(r.email), s(r.balance))
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
