package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/rosenmesh/rosen/cqrs/event"
	"github.com/rosenmesh/rosen/cqrs/service"
	"github.com/rosenmesh/rosen/cqrs/source"
)

// run measures each target: -repeat rounds of (raw baseline, engine) back
// to back on fresh tables, so that each ratio compares two figures taken
// under the same load, then the median round, then one lag run.
func run(ctx context.Context, c config) error {
	for _, target := range strings.Split(c.targets, ",") {
		var ratios, rates []float64
		for round := range max(1, c.repeat) {
			table := fmt.Sprintf("bench_cqrs_%s_%d_%d", target, time.Now().UnixNano()%1_000_000, round)
			if err := createTable(ctx, c, target, table); err != nil {
				return err
			}
			cpu := readCPU()
			raw, err := baseline(ctx, c, target, table+"_raw", &cpu)
			if err != nil {
				return fmt.Errorf("%s baseline: %w", target, err)
			}
			fmt.Printf("%s round %d raw baseline (%s, one client): %d rows in %s = %.0f rows/s (CPU: bench %s, database servers %s)\n", target, round+1, rawKind(target), c.events,
				raw.Round(time.Millisecond), float64(c.events)/raw.Seconds(), cpu.self.Round(10*time.Millisecond), cpu.server.Round(10*time.Millisecond))
			took, cpu, err := throughput(ctx, c, target, table)
			if err != nil {
				return fmt.Errorf("%s throughput: %w", target, err)
			}
			ratio := raw.Seconds() / took.Seconds()
			fmt.Printf("%s round %d engine: %d events in %s = %.0f events/s (%.0f%% of raw) (CPU: rosen %s, database servers %s; rosen allocations: %d, %d MiB)\n", target, round+1, c.events, took.Round(time.Millisecond),
				float64(c.events)/took.Seconds(), 100*ratio, cpu.self.Round(10*time.Millisecond), cpu.server.Round(10*time.Millisecond), cpu.mallocs, cpu.allocBytes>>20)
			ratios, rates = append(ratios, ratio), append(rates, float64(c.events)/took.Seconds())
			dropTables(ctx, c, target, table)
		}
		slices.Sort(ratios)
		slices.Sort(rates)
		fmt.Printf("%s median of %d rounds: %.0f events/s, %.0f%% of raw\n", target, len(rates), rates[len(rates)/2], 100*ratios[len(ratios)/2])
		table := fmt.Sprintf("bench_cqrs_%s_%d_lag", target, time.Now().UnixNano()%1_000_000)
		if err := createTable(ctx, c, target, table); err != nil {
			return err
		}
		p50, p99, max, n, err := lagRun(ctx, c, target, table)
		if err != nil {
			return fmt.Errorf("%s lag: %w", target, err)
		}
		fmt.Printf("%s lag at %d events/s for %ds: %d events, p50 %s, p99 %s, max %s\n", target, c.rate, c.lagSeconds, n,
			p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond), max.Round(100*time.Microsecond))
		dropTables(ctx, c, target, table)
	}
	return nil
}

func rawKind(target string) string {
	if target == "postgres" {
		return "COPY"
	}
	return "multi-row INSERT of 1000"
}

// payload is the event the engine projects: five columns, one numeric.
func payload(i, keys int) map[string]any {
	id := rand.IntN(keys) + 1
	return map[string]any{"id": id, "name": fmt.Sprintf("user %d", i), "email": fmt.Sprintf("u%d@example.com", i),
		"balance": json.Number(fmt.Sprintf("%d.%02d", rand.IntN(1_000_000), rand.IntN(100))), "active": i%2 == 0}
}

func rulesDir(c config, target, table string) (string, error) {
	dir, err := os.MkdirTemp("", "bench-cqrs-")
	if err != nil {
		return "", err
	}
	db := fmt.Sprintf(`{"databases":{"db":{"type":"postgres","dsn":%q}}}`, c.pgURL)
	if target == "mysql" {
		db = fmt.Sprintf(`{"databases":{"db":{"type":"mysql","dsn":%q}}}`, c.myDSN)
	}
	rules := fmt.Sprintf(`{"rules":[{"event":"userCreated","table":%q,"method":"upsert","database":"db","mapping":[
	 {"source":"id","target":"id","primary":true},{"source":"name","target":"name"},{"source":"email","target":"email"},
	 {"source":"balance","target":"balance"},{"source":"active","target":"active"}]}]}`, table)
	if err := os.WriteFile(filepath.Join(dir, "databases.json"), []byte(db), 0o600); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "rules.json"), []byte(rules), 0o600)
}

func openService(ctx context.Context, c config, target, table string, hook func([]*event.Event)) (*service.Service, string, error) {
	dir, err := rulesDir(c, target, table)
	if err != nil {
		return nil, "", err
	}
	files := service.Options{}.Files
	files.Rules = []string{filepath.Join(dir, "rules.json")}
	files.Databases = []string{filepath.Join(dir, "databases.json")}
	svc, err := service.Open(ctx, service.Options{Files: files, DataDir: dir, BatchSize: c.batch, OnCommitted: hook,
		JetStream: source.JetStreamConfig{DataDir: filepath.Join(dir, "nats"), Partitions: c.partitions}})
	return svc, dir, err
}

// throughput stores N events first, then measures how long the engine takes to project them all.
func throughput(ctx context.Context, c config, target, table string) (time.Duration, cpuMeter, error) {
	var mu sync.Mutex
	done := 0
	finished := make(chan struct{})
	svc, dir, err := openService(ctx, c, target, table, func(evs []*event.Event) {
		mu.Lock()
		done += len(evs)
		if done >= c.events {
			select {
			case <-finished:
			default:
				close(finished)
			}
		}
		mu.Unlock()
	})
	if err != nil {
		return 0, cpuMeter{}, err
	}
	defer os.RemoveAll(dir)
	defer svc.Close()
	if err := publish(ctx, svc, c.events, c.keys, 0); err != nil {
		return 0, cpuMeter{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	if c.cpuProfile != "" {
		if f, err := os.Create(c.cpuProfile); err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if c.memProfile != "" { // compare with go tool pprof -base <file>.base <file>
		if f, err := os.Create(c.memProfile + ".base"); err == nil {
			runtime.GC()
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			_ = f.Close()
		}
	}
	cpu0 := readCPU()
	start := time.Now()
	go func() { _ = svc.Run(rctx) }()
	<-finished
	took := time.Since(start)
	cpu := readCPU().since(cpu0)
	if c.memProfile != "" {
		if f, err := os.Create(c.memProfile); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			_ = f.Close()
		}
		c.memProfile = ""
	}
	cancel()
	return took, cpu, nil
}

// publish stores n events; rate 0 means as fast as possible, otherwise paced (with the event time set).
func publish(ctx context.Context, svc *service.Service, n, keys, rate int) error {
	js := svc.EventStore().JetStream()
	start := time.Now()
	for i := range n {
		if rate > 0 && i%100 == 0 {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
		}
		p := payload(i, keys)
		key := fmt.Sprint(p["id"])
		ev := map[string]any{"type": "userCreated", "key": key, "payload": p}
		if rate > 0 {
			ev["time"] = time.Now().UTC()
		}
		data, _ := json.Marshal(ev)
		if _, err := js.PublishAsync(svc.EventStore().SubjectFor("userCreated", key), data); err != nil {
			return err
		}
		if i%5000 == 4999 {
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	<-js.PublishAsyncComplete()
	return nil
}

// lagRun publishes at a steady rate while the engine runs and reports commit-time lag.
func lagRun(ctx context.Context, c config, target, table string) (p50, p99, max time.Duration, n int, err error) {
	var mu sync.Mutex
	var lags []time.Duration
	total := c.rate * c.lagSeconds
	finished := make(chan struct{})
	svc, dir, err := openService(ctx, c, target, table, func(evs []*event.Event) {
		now := time.Now()
		mu.Lock()
		for _, ev := range evs {
			lags = append(lags, now.Sub(ev.Time))
		}
		if len(lags) >= total {
			select {
			case <-finished:
			default:
				close(finished)
			}
		}
		mu.Unlock()
	})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	defer svc.Close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = svc.Run(rctx) }()
	time.Sleep(200 * time.Millisecond)
	if err := publish(ctx, svc, total, c.keys, c.rate); err != nil {
		return 0, 0, 0, 0, err
	}
	<-finished
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lags)
	return lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1], len(lags), nil
}

func createTable(ctx context.Context, c config, target, table string) error {
	for _, t := range []string{table, table + "_raw"} {
		switch target {
		case "postgres":
			conn, err := pgx.Connect(ctx, c.pgURL)
			if err != nil {
				return err
			}
			_, err = conn.Exec(ctx, `CREATE TABLE `+t+` (id bigint PRIMARY KEY, name text, email text, balance numeric(12,2), active boolean)`)
			_ = conn.Close(ctx)
			if err != nil {
				return err
			}
		case "mysql":
			db, err := sql.Open("mysql", c.myDSN)
			if err != nil {
				return err
			}
			_, err = db.ExecContext(ctx, `CREATE TABLE `+t+` (id BIGINT PRIMARY KEY, name TEXT, email TEXT, balance DECIMAL(12,2), active BOOLEAN)`)
			_ = db.Close()
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown target %q", target)
		}
	}
	return nil
}

func dropTables(ctx context.Context, c config, target, table string) {
	for _, t := range []string{table, table + "_raw"} {
		if target == "postgres" {
			if conn, err := pgx.Connect(ctx, c.pgURL); err == nil {
				_, _ = conn.Exec(ctx, `DROP TABLE `+t)
				_, _ = conn.Exec(ctx, `DELETE FROM rosen_cqrs_offsets WHERE view_name = $1`, t)
				_ = conn.Close(ctx)
			}
		} else if db, err := sql.Open("mysql", c.myDSN); err == nil {
			_, _ = db.Exec(`DROP TABLE ` + t)
			_, _ = db.Exec(`DELETE FROM rosen_cqrs_offsets WHERE view_name = ?`, t)
			_ = db.Close()
		}
	}
}
