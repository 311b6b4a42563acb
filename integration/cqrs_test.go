package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rosenmesh/rosen/internal/testenv"
)

func gravitySeed(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(repoRoot(), "..", "shared", "samples", "gravity-seed")
	if _, err := os.Stat(dir); err != nil {
		if testenv.CI() {
			t.Fatalf("Gravity seed samples missing under CI: %v", err)
		}
		t.Skipf("Gravity seed samples not found at %s", dir)
	}
	return dir
}

// TestCQRSSeedExample runs the seed's own example through `rosen cqrs serve`:
// userCreated → users (col_name, col_email) in PostgreSQL and MariaDB, with
// exporter1 (Kafka, a kfake cluster) and exporter2 (REST) on the db1 rule.
func TestCQRSSeedExample(t *testing.T) {
	seed := gravitySeed(t)
	pgURL, myDSN := testenv.PostgresDSN(t), testenv.MySQLDSN(t)
	ctx := context.Background()
	name := testenv.UniqueName("seed")

	// db1: a schema of its own in PostgreSQL; db2: a database of its own in MariaDB.
	pg, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	mustExec(t, pg.Exec, `CREATE SCHEMA `+name)
	defer func() { _, _ = pg.Exec(ctx, `DROP SCHEMA `+name+` CASCADE`) }()
	mustExec(t, pg.Exec, `CREATE TABLE `+name+`.users (id bigint PRIMARY KEY, col_name text, col_email text)`)
	my, err := sql.Open("mysql", myDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	mustExec(t, my.ExecContext, `CREATE DATABASE `+name)
	defer func() { _, _ = my.Exec(`DROP DATABASE ` + name) }()
	mustExec(t, my.ExecContext, `CREATE TABLE `+name+`.users (id BIGINT PRIMARY KEY, col_name TEXT, col_email VARCHAR(255))`)

	kafka, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "customized"))
	if err != nil {
		t.Fatal(err)
	}
	defer kafka.Close()
	var mu sync.Mutex
	var hooked []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var recs []map[string]any
		body, _ := io.ReadAll(r.Body)
		if json.Unmarshal(body, &recs) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		hooked = append(hooked, recs...)
		mu.Unlock()
	}))
	defer hook.Close()

	// The seed's databases and exporters, pointed at this machine's test servers.
	dir := t.TempDir()
	var dbs map[string]map[string]map[string]any
	readJSON(t, filepath.Join(seed, "databases.json"), &dbs)
	dbs["databases"]["db1"]["schema"] = name
	dbs["databases"]["db2"]["dbName"] = name
	var exps map[string]map[string]map[string]any
	readJSON(t, filepath.Join(seed, "exporter.json"), &exps)
	host, port, _ := net.SplitHostPort(kafka.ListenAddrs()[0])
	exps["exporter"]["exporter1"]["host"] = host
	exps["exporter"]["exporter1"]["port"], _ = strconv.Atoi(port)
	delete(exps["exporter"]["exporter1"], "username") // kfake runs without SASL
	delete(exps["exporter"]["exporter1"], "password")
	exps["exporter"]["exporter2"]["url"] = hook.URL + "/api"
	writeJSONFile(t, filepath.Join(dir, "databases.json"), dbs)
	writeJSONFile(t, filepath.Join(dir, "exporter.json"), exps)

	httpAddr := freeAddr(t)
	rules := strings.Join([]string{filepath.Join(seed, "rules.json"), filepath.Join(seed, "rules-multi-db.json"), filepath.Join(seed, "rules-exporters.json")}, ",")
	cctx, cancel := context.WithCancel(ctx)
	logs := &syncBuffer{}
	cmd := exec.CommandContext(cctx, rosenBin, "cqrs", "serve", "--cqrs-rules", rules,
		"--cqrs-databases", filepath.Join(dir, "databases.json"), "--cqrs-exporters", filepath.Join(dir, "exporter.json"),
		"--data", filepath.Join(dir, "data"), "--http-addr", httpAddr, "--log-format", "json", "--cqrs-partitions", "2")
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("rosen cqrs serve logs:\n%s", logs.String())
		}
	}()
	eventually(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})

	// Publish through the HTTP source: a batch, then a bad event that must be refused.
	events := `[
	 {"id":"e1","type":"userCreated","key":"1","payload":{"id":1,"name":"Ann","email":"ann@example.com"}},
	 {"id":"e2","type":"userCreated","key":"2","payload":{"id":2,"name":"Błażej 日本","email":"b@example.com"}},
	 {"id":"e3","type":"userCreated","key":"1","payload":{"id":1,"name":"Ann Smith"}}]`
	resp, err := http.Post("http://"+httpAddr+"/api/cqrs/events", "application/json", strings.NewReader(events))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish: %s %s", resp.Status, body)
	}
	resp, err = http.Post("http://"+httpAddr+"/api/cqrs/events", "application/json", strings.NewReader(`{"payload":{"id":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "missing type") {
		t.Fatalf("bad event: %s %s", resp.Status, body)
	}

	want := "1|Ann Smith|ann@example.com;2|Błażej 日本|b@example.com" // update merges: e3 keeps the email
	eventually(t, 60*time.Second, func() error {
		got, err := pgRows(ctx, pg, `SELECT id, col_name, col_email FROM `+name+`.users ORDER BY id`)
		if err != nil || got != want {
			return fmt.Errorf("postgres users = %q (%v)", got, err)
		}
		got, err = sqlRows(my, `SELECT id, col_name, col_email FROM `+name+`.users ORDER BY id`)
		if err != nil || got != want {
			return fmt.Errorf("mariadb users = %q (%v)", got, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(hooked) < 3 {
			return fmt.Errorf("REST exporter got %d records", len(hooked))
		}
		return nil
	})

	// exporter1: the records are in the Kafka topic, keyed by row key.
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka.ListenAddrs()...), kgo.ConsumeTopics("customized"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var kafkaRecs []string
	eventually(t, 30*time.Second, func() error {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		defer pcancel()
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { kafkaRecs = append(kafkaRecs, string(r.Key)+"="+string(r.Value)) })
		if len(kafkaRecs) < 3 {
			return fmt.Errorf("kafka has %d records", len(kafkaRecs))
		}
		return nil
	})
	if !strings.Contains(strings.Join(kafkaRecs, "\n"), `"col_name":"Ann Smith"`) {
		t.Errorf("kafka records: %v", kafkaRecs)
	}

	// rosen cqrs status and replay against the running worker.
	out, err := exec.Command(rosenBin, "cqrs", "status", "--http-addr", httpAddr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "userCreated") || !strings.Contains(string(out), "db2.users") {
		t.Fatalf("rosen cqrs status: %v\n%s", err, out)
	}
	t.Logf("rosen cqrs status:\n%s", out)
	mustExec(t, pg.Exec, `UPDATE `+name+`.users SET col_name = 'tampered'`)
	// Both users views (db1 and db2) are rebuilt: 3 events each.
	out, err = exec.Command(rosenBin, "cqrs", "replay", "--view", "users", "--http-addr", httpAddr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"events":6`) {
		t.Fatalf("rosen cqrs replay: %v\n%s", err, out)
	}
	if got, err := pgRows(ctx, pg, `SELECT id, col_name, col_email FROM `+name+`.users ORDER BY id`); err != nil || got != want {
		t.Fatalf("after replay postgres users = %q (%v)", got, err)
	}
	out, err = exec.Command(rosenBin, "cqrs", "replay", "--view", "nope", "--http-addr", httpAddr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown view") {
		t.Fatalf("replay of an unknown view: %v\n%s", err, out)
	}
}

func mustExec[R any](t *testing.T, exec func(context.Context, string, ...any) (R, error), q string) {
	t.Helper()
	if _, err := exec(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func readJSON(t *testing.T, p string, out any) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatal(err)
	}
}

func writeJSONFile(t *testing.T, p string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, string(data))
}

func pgRows(ctx context.Context, c *pgx.Conn, q string) (string, error) {
	rows, err := c.Query(ctx, q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id int64
		var a, b *string
		if err := rows.Scan(&id, &a, &b); err != nil {
			return "", err
		}
		out = append(out, fmt.Sprintf("%d|%s|%s", id, deref(a), deref(b)))
	}
	return strings.Join(out, ";"), rows.Err()
}

func sqlRows(db *sql.DB, q string) (string, error) {
	rows, err := db.Query(q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id int64
		var a, b sql.NullString
		if err := rows.Scan(&id, &a, &b); err != nil {
			return "", err
		}
		out = append(out, fmt.Sprintf("%d|%s|%s", id, a.String, b.String))
	}
	return strings.Join(out, ";"), rows.Err()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
