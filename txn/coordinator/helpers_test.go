package coordinator_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/rosenmesh/rosen/internal/testenv"
	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// stores runs body against a fresh SQLite store, a fresh PostgreSQL store and a fresh Redis store.
func stores(t *testing.T, body func(t *testing.T, s store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "txn.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		body(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn, prefix := testenv.PostgresDSN(t), testenv.UniqueName("co")
		s, err := store.OpenPostgres(context.Background(), dsn, store.Options{Prefix: prefix, MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = s.Close()
			if db, err := sql.Open("pgx", dsn); err == nil {
				_, _ = db.Exec(`DROP TABLE IF EXISTS ` + prefix + `_txn, ` + prefix + `_txn_branch`)
				_ = db.Close()
			}
		})
		body(t, s)
	})
	t.Run("redis", func(t *testing.T) {
		addr, prefix := testenv.RedisAddr(t), testenv.UniqueName("co")
		s, err := store.OpenRedis(context.Background(), "redis://"+addr+"/0", store.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = s.Close()
			rdb := redis.NewClient(&redis.Options{Addr: addr})
			defer rdb.Close()
			ctx := context.Background()
			for it := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator(); it.Next(ctx); {
				_ = rdb.Del(ctx, it.Val()).Err()
			}
		})
		body(t, s)
	})
}

// start runs a coordinator with fast retries until the test ends.
func start(t *testing.T, s store.Store, tweak func(*coordinator.Options)) (*coordinator.Coordinator, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := coordinator.Options{Store: s, Log: zaptest.NewLogger(t), Registry: reg,
		Lease: time.Second, Poll: 20 * time.Millisecond, CallTimeout: 300 * time.Millisecond,
		DefaultPolicy: store.Policy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Limit: 4}}
	if tweak != nil {
		tweak(&opts)
	}
	c, err := coordinator.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, reg
}

// call is one request a participant received.
type call struct {
	Txn, Branch, Phase, Trace, Tenant string
	Body                              string
}

// participant is an HTTP service whose answers a test scripts.
type participant struct {
	srv    *httptest.Server
	mu     sync.Mutex
	calls  []call
	answer func(c call, n int) (int, string) // n: how many calls of this phase it saw for this txn/branch before
}

func newParticipant(t *testing.T, answer func(c call, n int) (int, string)) *participant {
	p := &participant{answer: answer}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body json.RawMessage
		_ = json.NewDecoder(r.Body).Decode(&body)
		c := call{Txn: r.Header.Get(coordinator.HeaderTxnID), Branch: r.Header.Get(coordinator.HeaderBranchID),
			Phase: r.Header.Get(coordinator.HeaderPhase), Trace: r.Header.Get("traceparent"), Tenant: r.Header.Get("X-Tenant"), Body: string(body)}
		p.mu.Lock()
		n := 0
		for _, old := range p.calls {
			if old.Txn == c.Txn && old.Branch == c.Branch && old.Phase == c.Phase {
				n++
			}
		}
		p.calls = append(p.calls, c)
		p.mu.Unlock()
		code, text := http.StatusOK, `{"status":"SUCCESS"}`
		if p.answer != nil {
			code, text = p.answer(c, n)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(text))
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *participant) phases(txn string) map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for _, c := range p.calls {
		if c.Txn == txn {
			out[c.Phase]++
		}
	}
	return out
}

func (p *participant) branch(id string) store.Branch {
	return store.Branch{ID: id,
		Confirm: store.Action{URL: p.srv.URL + "/confirm", Body: []byte(`{"amount":5}`)},
		Cancel:  store.Action{URL: p.srv.URL + "/cancel", Body: []byte(`{"amount":5}`)}}
}

// eventually polls the transaction until cond holds (no time assertion: the test's own deadline bounds it).
func eventually(t *testing.T, c *coordinator.Coordinator, id string, cond func(*store.Txn) bool) *store.Txn {
	t.Helper()
	var last *store.Txn
	for range 6000 { // a watchdog of about a minute, far beyond what any case needs
		tx, err := c.Get(context.Background(), id)
		if err == nil && cond(tx) {
			return tx
		}
		last = tx
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never reached the expected state; last %+v", id, last)
	return nil
}

// metric sums the samples of a metric family whose labels include the value (any label when empty).
func metric(t *testing.T, reg *prometheus.Registry, name, labelValue string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := labelValue == ""
			for _, l := range m.GetLabel() {
				if l.GetValue() == labelValue {
					match = true
				}
			}
			if !match {
				continue
			}
			if m.Counter != nil {
				sum += m.GetCounter().GetValue()
			} else if m.Histogram != nil {
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// waitMetric waits until the metric reaches want (rounds count just after the
// store has their outcome, so a test that saw the outcome may be early), then
// fails if it went past it.
func waitMetric(t *testing.T, reg *prometheus.Registry, name, labelValue string, want float64) {
	t.Helper()
	for range 1000 {
		if metric(t, reg, name, labelValue) >= want {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := metric(t, reg, name, labelValue); got != want {
		t.Fatalf("%s{%s} = %v, want %v", name, labelValue, got, want)
	}
}
