// Command txn-bench measures the TCC coordinator: global transactions per
// second and begin→committed latency, with two HTTP participants on loopback,
// on the PostgreSQL store or the SQLite store. Each transaction is: begin,
// register two branches and call their Try, commit and wait for committed
// (the coordinator then calls both Confirms). It talks only to 127.0.0.1 and
// stops by itself after -duration.
//
//	go run ./bench/txn -store postgres -duration 20s -clients 64
//	go run ./bench/txn -store sqlite -duration 20s -clients 64
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/rest"
	"github.com/rosenmesh/rosen/txn/store"
)

func main() {
	kind := flag.String("store", "postgres", "postgres or sqlite")
	dsn := flag.String("postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL URL")
	duration := flag.Duration("duration", 20*time.Second, "how long to load")
	clients := flag.Int("clients", 64, "concurrent callers")
	conns := flag.Int("conns", 32, "PostgreSQL connections")
	profile := flag.String("cpuprofile", "", "write a CPU profile here")
	atBegin := flag.Bool("branches-at-begin", false, "register both branches in the begin request (Twist-style) instead of one request each")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "txn-bench:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*kind, *dsn, *duration, *clients, *conns, *atBegin); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "txn-bench:", err)
		os.Exit(1)
	}
}

func listen(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func run(kind, dsn string, duration time.Duration, clients, conns int, atBegin bool) error {
	ctx := context.Background()
	prefix := fmt.Sprintf("bench_%d", time.Now().UnixNano()%1_000_000_000)
	var st store.Store
	var err error
	switch kind {
	case "postgres":
		st, err = store.OpenPostgres(ctx, dsn, store.Options{Prefix: prefix, MaxConns: conns})
	case "sqlite":
		dir, derr := os.MkdirTemp("", "txn-bench-")
		if derr != nil {
			return derr
		}
		defer os.RemoveAll(dir)
		st, err = store.OpenSQLite(ctx, filepath.Join(dir, "txn.db"), store.Options{})
	default:
		return errors.New("-store: postgres or sqlite")
	}
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := coordinator.New(coordinator.Options{Store: st, Log: zap.NewNop()})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = c.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	api, closeAPI, err := listen(rest.New(c, nil))
	if err != nil {
		return err
	}
	defer closeAPI()
	var confirms atomic.Int64
	participant := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get(coordinator.HeaderPhase) == coordinator.PhaseConfirm {
			confirms.Add(1)
		}
		_, _ = io.WriteString(w, `{"status":"SUCCESS"}`)
	})
	p1, close1, err := listen(participant)
	if err != nil {
		return err
	}
	defer close1()
	p2, close2, err := listen(participant)
	if err != nil {
		return err
	}
	defer close2()

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = clients * 2
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	post := func(url string, body any, hdr map[string]string) (map[string]any, error) {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		out := map[string]any{}
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &out)
		if resp.StatusCode/100 != 2 {
			return out, fmt.Errorf("%s: %d %s", url, resp.StatusCode, b)
		}
		return out, nil
	}
	branch := func(i int, p string) map[string]any {
		return map[string]any{"branch_id": fmt.Sprintf("b%d", i), "confirm": p + "/confirm", "cancel": p + "/cancel", "payload": map[string]int{"amount": 1}}
	}
	one := func() error {
		begin := map[string]any{"timeout": "30s"}
		if atBegin {
			begin["branches"] = []any{branch(0, p1), branch(1, p2)}
		}
		t, err := post(api+"/api/txn/transactions", begin, nil)
		if err != nil {
			return err
		}
		id := t["id"].(string)
		for i, p := range []string{p1, p2} {
			b := fmt.Sprintf("b%d", i)
			if !atBegin {
				if _, err := post(api+"/api/txn/transactions/"+id+"/branches", branch(i, p), nil); err != nil {
					return err
				}
			}
			if _, err := post(p+"/try", map[string]int{"amount": 1}, map[string]string{coordinator.HeaderTxnID: id, coordinator.HeaderBranchID: b, coordinator.HeaderPhase: "try"}); err != nil {
				return err
			}
		}
		out, err := post(api+"/api/txn/transactions/"+id+"/commit?wait=30s", nil, nil)
		if err != nil {
			return err
		}
		if out["state"] != "committed" {
			return fmt.Errorf("%s ended %v", id, out["state"])
		}
		return nil
	}

	var mu sync.Mutex
	var lat []time.Duration
	var failures atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(duration)
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := one(); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	fmt.Printf("store=%s branches-at-begin=%v clients=%d duration=%s committed=%d failed=%d tps=%.0f p50=%s p99=%s confirms=%d\n",
		kind, atBegin, clients, elapsed.Round(time.Millisecond), len(lat), failures.Load(), float64(len(lat))/elapsed.Seconds(),
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), confirms.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Println("first error:", e)
	}
	return nil
}
