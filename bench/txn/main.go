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
	"bufio"
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
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/participant"
	"github.com/rosenmesh/rosen/txn/rest"
	"github.com/rosenmesh/rosen/txn/store"
)

// config is the command line.
type config struct {
	kind, dsn, redis string
	duration         time.Duration
	clients, conns   int
	workers          int
	atBegin, split   bool
	profile          string
	memprofile       string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.kind, "store", "postgres", "postgres, sqlite or redis")
	flag.StringVar(&cfg.dsn, "postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL URL")
	flag.StringVar(&cfg.redis, "redis", "redis://127.0.0.1:6379/0", "Redis URL")
	flag.DurationVar(&cfg.duration, "duration", 20*time.Second, "how long to load")
	flag.IntVar(&cfg.clients, "clients", 64, "concurrent callers")
	flag.IntVar(&cfg.conns, "conns", 32, "PostgreSQL connections")
	flag.IntVar(&cfg.workers, "commit-workers", 0, "group commits in flight at once on PostgreSQL (0: the store's default)")
	flag.BoolVar(&cfg.atBegin, "branches-at-begin", false, "register both branches in the begin request (Twist-style) instead of one request each")
	httpFloor := flag.Bool("http-floor", false, "measure only net/http on loopback: -clients callers POSTing a small JSON body to a handler that answers a small one (the CPU one request costs, both ends)")
	storeOnly := flag.Bool("store-only", false, "drive the store alone with the writes of each transaction (no HTTP, no coordinator)")
	flag.BoolVar(&cfg.split, "split", false, "run the coordinator in a child process, so its CPU is measured apart from the callers' and participants'")
	role := flag.String("role", "", "internal: 'coordinator' runs only the coordinator (the child of -split)")
	profile := flag.String("cpuprofile", "", "write a CPU profile here (with -split, the coordinator's goes to <file>.coordinator)")
	memprofile := flag.String("memprofile", "", "write an allocation profile here at the end (with -split, the coordinator's goes to <file>.coordinator)")
	flag.Parse()
	cfg.memprofile = *memprofile
	if *memprofile != "" {
		runtime.MemProfileRate = 4096
		defer func() {
			if f, err := os.Create(*memprofile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				_ = f.Close()
			}
		}()
	}
	cfg.profile = *profile
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "txn-bench:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var err error
	switch {
	case *role == "coordinator":
		err = serveCoordinator(cfg)
	case *storeOnly:
		err = runStoreOnly(cfg)
	case *httpFloor:
		err = runHTTPFloor(cfg)
	default:
		err = run(cfg)
	}
	if err != nil {
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

// openStore opens the -store with fresh tables (or keys, or file).
func openStore(ctx context.Context, cfg config) (store.Store, func(), error) {
	prefix := fmt.Sprintf("bench_%d", time.Now().UnixNano()%1_000_000_000)
	var st store.Store
	var err error
	var dir string
	switch cfg.kind {
	case "postgres":
		st, err = store.OpenPostgres(ctx, cfg.dsn, store.Options{Prefix: prefix, MaxConns: cfg.conns, CommitWorkers: cfg.workers})
	case "sqlite":
		dir, err = os.MkdirTemp("", "txn-bench-")
		if err != nil {
			return nil, nil, err
		}
		st, err = store.OpenSQLite(ctx, filepath.Join(dir, "txn.db"), store.Options{})
	case "redis":
		st, err = store.OpenRedis(ctx, cfg.redis, store.Options{Prefix: prefix})
	default:
		return nil, nil, errors.New("-store: postgres, sqlite or redis")
	}
	if err != nil {
		return nil, nil, err
	}
	if d := store.RedisDurability(st); d != "" {
		fmt.Fprintln(os.Stderr, "redis:", d)
	}
	return st, func() {
		_ = st.Close()
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}, nil
}

// runStoreOnly drives the store alone with the writes of one global
// transaction (begin, two registrations, commit, outcome), from -clients
// goroutines: the ceiling the store puts on the coordinator.
func runStoreOnly(cfg config) error {
	ctx := context.Background()
	st, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	branch := func(i int) store.Branch {
		return store.Branch{ID: fmt.Sprintf("b%d", i), Confirm: store.Action{URL: "http://127.0.0.1:1/confirm", Body: []byte(`{"amount":1}`)},
			Cancel: store.Action{URL: "http://127.0.0.1:1/cancel", Body: []byte(`{"amount":1}`)}}
	}
	var seq atomic.Int64
	one := func() error {
		id := fmt.Sprintf("s%d-%d", os.Getpid(), seq.Add(1))
		now := time.Now().UTC()
		t := &store.Txn{ID: id, Policy: store.Policy{Initial: time.Second, Max: time.Minute, Limit: 10}, CreatedAt: now, Deadline: now.Add(30 * time.Second)}
		if cfg.atBegin {
			t.Branches = []store.Branch{branch(0), branch(1)}
		}
		if err := st.Create(ctx, t); err != nil {
			return err
		}
		if !cfg.atBegin {
			for i := range 2 {
				if err := st.AddBranch(ctx, id, branch(i), now); err != nil {
					return err
				}
			}
		}
		got, err := st.Transition(ctx, id, store.Transition{From: []store.State{store.Trying}, To: store.Confirming, Now: now,
			Owner: "bench", LeaseUntil: now.Add(15 * time.Second), NextDue: now, BeforeDeadline: true})
		if err != nil {
			return err
		}
		p := store.Progress{Owner: "bench", From: store.Confirming, To: store.Committed, Now: time.Now().UTC(), Attempts: 1}
		for _, b := range got.Branches {
			b.State, b.Attempts = store.BranchConfirmed, 1
			p.Branches = append(p.Branches, b)
		}
		return st.SaveProgress(ctx, id, p)
	}
	cpu0, db0 := selfCPU(), processCPU(dbProcess(cfg.kind))
	lat, failures, elapsed, firstErr := load(cfg.clients, cfg.duration, one)
	cpu, db := selfCPU()-cpu0, processCPU(dbProcess(cfg.kind))-db0
	n := len(lat)
	fmt.Printf("store-only store=%s commit-workers=%d branches-at-begin=%v clients=%d duration=%s txns=%d failed=%d tps=%.0f p50=%s p99=%s\n",
		cfg.kind, cfg.workers, cfg.atBegin, cfg.clients, elapsed.Round(time.Millisecond), n, failures, float64(n)/elapsed.Seconds(),
		pct(lat, 0.50).Round(10*time.Microsecond), pct(lat, 0.99).Round(10*time.Microsecond))
	if n > 0 {
		fmt.Printf("cpu per txn: this process %.0f µs, %s %.0f µs\n", float64(cpu.Microseconds())/float64(n), cfg.kind, float64(db.Microseconds())/float64(n))
	}
	if firstErr != "" {
		fmt.Println("first error:", firstErr)
	}
	return nil
}

// runHTTPFloor measures what one HTTP request costs with net/http on
// loopback, client and server in this process, with the transports the
// SDK and the coordinator use: the floor under the 8 (or 6) requests and 2
// confirms of each global transaction.
func runHTTPFloor(cfg config) error {
	srv, stop, err := listen(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"SUCCESS"}`)
	}))
	if err != nil {
		return err
	}
	defer stop()
	cl := participant.NewClient(srv)
	defer cl.Close()
	body := []byte(`{"amount":1}`)
	one := func() error {
		req, _ := http.NewRequest(http.MethodPost, srv+"/try", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := cl.HTTP.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	cpu0, allocs0 := selfCPU(), mallocs()
	lat, failures, elapsed, firstErr := load(cfg.clients, cfg.duration, one)
	cpu, allocs := selfCPU()-cpu0, mallocs()-allocs0
	n := len(lat)
	fmt.Printf("http-floor clients=%d duration=%s requests=%d failed=%d rps=%.0f p50=%s p99=%s\n", cfg.clients, elapsed.Round(time.Millisecond), n, failures,
		float64(n)/elapsed.Seconds(), pct(lat, 0.50).Round(time.Microsecond), pct(lat, 0.99).Round(time.Microsecond))
	if n > 0 {
		fmt.Printf("cpu per request (client and server): %.1f µs; heap allocations per request: %d\n", float64(cpu.Microseconds())/float64(n), allocs/uint64(n))
	}
	if firstErr != "" {
		fmt.Println("first error:", firstErr)
	}
	return nil
}

// dbProcess is the command name of the -store's server processes ("" for SQLite: in this process).
func dbProcess(kind string) string {
	switch kind {
	case "postgres":
		return "postgres"
	case "redis":
		return "redis-server"
	}
	return ""
}

// load runs one in a loop from clients goroutines for d and returns the
// latencies of the successes (sorted), the failures and the first error.
func load(clients int, d time.Duration, one func() error) ([]time.Duration, int64, time.Duration, string) {
	var mu sync.Mutex
	var lat []time.Duration
	var failures atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
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
	e, _ := firstErr.Load().(string)
	return lat, failures.Load(), elapsed, e
}

func pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[min(len(lat)-1, int(float64(len(lat))*p))]
}

// startCoordinator opens the store, runs a coordinator and serves its REST API
// on loopback, plus GET /bench/cpu (this process's CPU time in ns).
func startCoordinator(cfg config) (string, func(), error) {
	ctx := context.Background()
	st, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return "", nil, err
	}
	c, err := coordinator.New(coordinator.Options{Store: st, Log: zap.NewNop()})
	if err != nil {
		return "", nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = c.Run(runCtx); close(done) }()
	mux := http.NewServeMux()
	mux.Handle("/api/", rest.New(c, nil))
	mux.HandleFunc("/bench/cpu", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprint(w, int64(selfCPU()), " ", mallocs())
	})
	api, closeAPI, err := listen(mux)
	if err != nil {
		stop()
		<-done
		return "", nil, err
	}
	return api, func() {
		closeAPI()
		stop()
		<-done
		closeStore()
	}, nil
}

// serveCoordinator is the child of -split: it prints its address and serves until stdin closes.
func serveCoordinator(cfg config) error {
	api, stop, err := startCoordinator(cfg)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Println(api)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// spawnCoordinator starts the -split child and returns its address.
func spawnCoordinator(cfg config) (string, func(), error) {
	args := []string{"-role", "coordinator", "-store", cfg.kind, "-postgres", cfg.dsn, "-redis", cfg.redis,
		"-conns", strconv.Itoa(cfg.conns), "-commit-workers", strconv.Itoa(cfg.workers)}
	if cfg.profile != "" {
		args = append(args, "-cpuprofile", cfg.profile+".coordinator")
	}
	if cfg.memprofile != "" {
		args = append(args, "-memprofile", cfg.memprofile+".coordinator")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return "", nil, fmt.Errorf("coordinator child: %w", err)
	}
	return strings.TrimSpace(line), func() { _ = stdin.Close(); _ = cmd.Wait() }, nil
}

// remoteCPU is the coordinator child's CPU time and heap allocations so far.
func remoteCPU(api string) (time.Duration, uint64) {
	resp, err := http.Get(api + "/bench/cpu")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	cpu, allocs, _ := strings.Cut(string(b), " ")
	n, _ := strconv.ParseInt(cpu, 10, 64)
	a, _ := strconv.ParseUint(allocs, 10, 64)
	return time.Duration(n), a
}

// mallocs is the number of heap allocations this process has made.
func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

func run(cfg config) error {
	clients, atBegin, duration, kind := cfg.clients, cfg.atBegin, cfg.duration, cfg.kind
	startFn := startCoordinator
	if cfg.split {
		startFn = spawnCoordinator
	}
	api, stopCoordinator, err := startFn(cfg)
	if err != nil {
		return err
	}
	defer stopCoordinator()
	var confirms atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get(coordinator.HeaderPhase) == coordinator.PhaseConfirm {
			confirms.Add(1)
		}
		_, _ = io.WriteString(w, `{"status":"SUCCESS"}`)
	})
	p1, close1, err := listen(handler)
	if err != nil {
		return err
	}
	defer close1()
	p2, close2, err := listen(handler)
	if err != nil {
		return err
	}
	defer close2()

	// The callers use the Go SDK (txn/participant), as a service author would:
	// begin, for each branch register it (or name it in the begin with
	// -branches-at-begin) and POST its Try with the protocol headers, then
	// commit and wait for committed — 8 requests (6 with branches at begin).
	cl := participant.NewClient(api)
	defer cl.Close()
	payload := json.RawMessage(`{"amount":1}`)
	branches := []participant.Branch{
		{ID: "b0", Try: p1 + "/try", Confirm: p1 + "/confirm", Cancel: p1 + "/cancel", Payload: payload},
		{ID: "b1", Try: p2 + "/try", Confirm: p2 + "/confirm", Cancel: p2 + "/cancel", Payload: payload},
	}
	ctx := context.Background()
	one := func() error {
		o := participant.Options{Timeout: 30 * time.Second}
		if atBegin {
			o.Branches = branches
		}
		g, err := cl.Begin(ctx, o)
		if err != nil {
			return err
		}
		for _, b := range branches {
			if err := g.Try(ctx, b); err != nil {
				return err
			}
		}
		state, err := g.Commit(ctx, 30*time.Second)
		if err != nil {
			return err
		}
		if state != "committed" {
			return fmt.Errorf("%s ended %v", g.ID, state)
		}
		return nil
	}

	commits0 := pgCommits(cfg)
	cpu0, db0, allocs0 := selfCPU(), processCPU(dbProcess(kind)), mallocs()
	var coord0 time.Duration
	var coordAllocs0 uint64
	if cfg.split {
		coord0, coordAllocs0 = remoteCPU(api)
	}
	lat, failures, elapsed, firstErr := load(clients, duration, one)
	cpu, db, allocs := selfCPU()-cpu0, processCPU(dbProcess(kind))-db0, mallocs()-allocs0
	commits := pgCommits(cfg) - commits0
	var coord time.Duration
	var coordAllocs uint64
	if cfg.split {
		c, a := remoteCPU(api)
		coord, coordAllocs = c-coord0, a-coordAllocs0
	}
	fmt.Printf("store=%s split=%v branches-at-begin=%v clients=%d duration=%s committed=%d failed=%d tps=%.0f p50=%s p99=%s confirms=%d\n",
		kind, cfg.split, atBegin, clients, elapsed.Round(time.Millisecond), len(lat), failures, float64(len(lat))/elapsed.Seconds(),
		pct(lat, 0.50).Round(10*time.Microsecond), pct(lat, 0.99).Round(10*time.Microsecond), confirms.Load())
	if n := len(lat); n > 0 {
		per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
		// CPU per transaction of each part; the database's figure counts every
		// process of that name on the machine (other users of it included).
		if cfg.split {
			fmt.Printf("cpu per txn: coordinator %.0f µs, %s %.0f µs, callers+participants %.0f µs; coordinator+store alone on 2 idle cores: %.0f tps\n",
				per(coord), kind, per(db), per(cpu), 2e6/(per(coord)+per(db)))
			fmt.Printf("heap allocations per txn: coordinator %d, callers+participants %d\n", coordAllocs/uint64(n), allocs/uint64(n))
		} else {
			fmt.Printf("cpu per txn: this process (coordinator, callers, participants) %.0f µs, %s %.0f µs; everything on 2 idle cores: %.0f tps\n",
				per(cpu), kind, per(db), 2e6/(per(cpu)+per(db)))
			fmt.Printf("heap allocations per txn: this process %d\n", allocs/uint64(n))
		}
		if commits > 0 {
			// Every PostgreSQL transaction of the database (others' included) over the run: with group commit, a
			// batch of writes is one; the 5 writes of each global transaction, alone, would be 5.
			fmt.Printf("postgres commits per txn (database-wide, an upper bound): %.2f\n", float64(commits)/float64(n))
		}
	}
	if e := firstErr; e != "" {
		fmt.Println("first error:", e)
	}
	return nil
}

// pgCommits is the database's committed transactions so far (PostgreSQL
// only; 0 otherwise). Statistics reach the view within a second or so.
func pgCommits(cfg config) int64 {
	if cfg.kind != "postgres" {
		return 0
	}
	time.Sleep(1100 * time.Millisecond) // let backends flush their counters
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cfg.dsn)
	if err != nil {
		return 0
	}
	defer conn.Close(ctx)
	var n int64
	_ = conn.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	return n
}

// selfCPU is the user+system CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the user+system CPU time used so far by every process whose
// command name is comm (Linux /proc; 0 elsewhere).
func processCPU(comm string) time.Duration {
	if comm == "" {
		return 0
	}
	dirs, _ := os.ReadDir("/proc")
	var ticks int64
	for _, d := range dirs {
		raw, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
		if open < 0 || end < open || string(raw[open+1:end]) != comm {
			continue
		}
		f := strings.Fields(string(raw[end+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64) // utime, field 14
		k, _ := strconv.ParseInt(f[12], 10, 64) // stime, field 15
		ticks += u + k
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ = 100
}
