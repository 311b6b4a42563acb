package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zaptest"

	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/cqrs/sink"
	"github.com/rosenmesh/rosen/cqrs/source"
	"github.com/rosenmesh/rosen/internal/testenv"
)

// TestDatabaseGoesAwayMidStream kills the sink's PostgreSQL connections
// again and again while events flow: the engine retries, nothing is
// dead-lettered, nothing is lost.
func TestDatabaseGoesAwayMidStream(t *testing.T) {
	pgURL := testenv.PostgresDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app := testenv.UniqueName("outage")
	table := app + "_t"
	dir := t.TempDir()
	dsn := pgURL + "&application_name=" + app
	if err := os.WriteFile(filepath.Join(dir, "databases.json"), []byte(fmt.Sprintf(`{"databases":{"pg":{"type":"postgres","dsn":%q}}}`, dsn)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(fmt.Sprintf(`{"rules":[{"event":"tick","table":%q,"createTable":true,"mapping":[
	  {"source":"id","target":"id","primary":true,"type":"bigint"},{"source":"n","target":"n","type":"bigint"}]}]}`, table)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := rules.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	defer func() { _, _ = admin.Exec(context.Background(), `DROP TABLE IF EXISTS `+table) }()
	db, err := sink.Open(ctx, cfg.Databases["pg"], dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Prepare(ctx, cfg.Rules); err != nil {
		t.Fatal(err)
	}
	store, err := source.OpenEventStore(ctx, source.JetStreamConfig{DataDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	eng, err := New(Options{Config: cfg, Sinks: map[string]*sink.Sink{"pg": {Name: "pg", Store: db}}, DeadLetters: store,
		Log: zaptest.NewLogger(t), BatchSize: 50, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	src, err := store.Consumer(ctx, "outage", nil, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = eng.Run(ctx, src) }()
	const total = 3000
	var last uint64
	killed := int64(0)
	for i := range total {
		if last, err = store.Publish(ctx, fmt.Appendf(nil, `{"type":"tick","payload":{"id":%d,"n":%d}}`, i%100, i)); err != nil {
			t.Fatal(err)
		}
		if i%300 == 0 {
			var n int64
			_ = admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n)
			killed += n
		}
	}
	waitFor(t, "the last event", func() bool { return eng.Status().LastSeq >= last })
	var rows, sum int64
	if err := admin.QueryRow(ctx, `SELECT count(*), sum(n) FROM `+table).Scan(&rows, &sum); err != nil {
		t.Fatal(err)
	}
	// Each id keeps its last n: ids 0..99 hold n = 2900..2999.
	if rows != 100 || sum != (2900+2999)*50 {
		t.Fatalf("rows %d sum %d", rows, sum)
	}
	if n, _ := store.DeadLetterCount(ctx); n != 0 {
		t.Fatalf("%d dead letters from an outage", n)
	}
	t.Logf("%d backend connections killed mid-stream; status %+v", killed, eng.Status().LastError)
}
