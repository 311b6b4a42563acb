package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/grpcapi"
	"github.com/rosenmesh/rosen/txn/rest"
	"github.com/rosenmesh/rosen/txn/store"
)

// txnFlags configure the TCC coordinator, in `rosen serve` and `rosen txn serve`.
type txnFlags struct {
	storeKind   string
	postgresDSN string
	redisURL    string
	retention   time.Duration
	webhook     string
	lease       time.Duration
	callTimeout time.Duration
	timeout     time.Duration
	owner       string
	prefix      string
	denyNets    []string
}

var serveTxn = &txnFlags{}

func (f *txnFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.storeKind, "txn-store", "sqlite", "TCC coordinator store: sqlite (under --data, one process), postgres or redis (any number of replicas) [ROSEN_TXN_STORE]")
	fs.StringVar(&f.postgresDSN, "txn-postgres", "", "PostgreSQL URL for --txn-store postgres [ROSEN_TXN_POSTGRES]")
	fs.StringVar(&f.redisURL, "txn-redis", "", "Redis URL (redis://host:port/db) for --txn-store redis; durable only with appendonly yes, appendfsync always [ROSEN_TXN_REDIS]")
	fs.DurationVar(&f.retention, "txn-retention", 7*24*time.Hour, "how long committed and aborted transactions stay queryable before they are deleted (negative: for ever) [ROSEN_TXN_RETENTION]")
	fs.StringVar(&f.webhook, "txn-webhook", "", "URL POSTed a JSON alert when a transaction gets stuck [ROSEN_TXN_WEBHOOK]")
	fs.DurationVar(&f.lease, "txn-lease", 15*time.Second, "how long a replica holds claimed work before another may take it over [ROSEN_TXN_LEASE]")
	fs.DurationVar(&f.callTimeout, "txn-call-timeout", 5*time.Second, "bound on one confirm/cancel call to a participant [ROSEN_TXN_CALL_TIMEOUT]")
	fs.DurationVar(&f.timeout, "txn-default-timeout", 60*time.Second, "timeout of a transaction that names none [ROSEN_TXN_DEFAULT_TIMEOUT]")
	fs.StringVar(&f.prefix, "txn-table-prefix", "rosen", "prefix of the store's table names, to keep several coordinator groups in one database [ROSEN_TXN_TABLE_PREFIX]")
	deny := make([]string, len(coordinator.DefaultDenyNets))
	for i, p := range coordinator.DefaultDenyNets {
		deny[i] = p.String()
	}
	fs.StringSliceVar(&f.denyNets, "txn-deny-nets", deny, "networks (CIDR) participants may not be in: branches naming one are refused and the coordinator will not connect to one, names checked after resolution; the default is link-local and cloud metadata addresses; \"\" allows all [ROSEN_TXN_DENY_NETS]")
	fs.StringVar(&f.owner, "txn-owner", "", "this replica's name in leases (default host-pid-random) [ROSEN_TXN_OWNER]")
}

func (f *txnFlags) openStore(ctx context.Context, dataDir string) (store.Store, error) {
	switch f.storeKind {
	case "sqlite":
		return store.OpenSQLite(ctx, filepath.Join(dataDir, "txn.db"), store.Options{Prefix: f.prefix})
	case "postgres":
		if f.postgresDSN == "" {
			return nil, errors.New("--txn-store postgres needs --txn-postgres")
		}
		return store.OpenPostgres(ctx, f.postgresDSN, store.Options{Prefix: f.prefix})
	case "redis":
		if f.redisURL == "" {
			return nil, errors.New("--txn-store redis needs --txn-redis")
		}
		return store.OpenRedis(ctx, f.redisURL, store.Options{Prefix: f.prefix})
	}
	return nil, fmt.Errorf("--txn-store %q: want sqlite, postgres or redis", f.storeKind)
}

// start opens the store and builds the coordinator; the HTTP handler serves both REST shapes.
func (f *txnFlags) start(ctx context.Context, log *zap.Logger, reg prometheus.Registerer, dataDir string) (*coordinator.Coordinator, store.Store, http.Handler, error) {
	if f.lease < 2*f.callTimeout {
		return nil, nil, nil, fmt.Errorf("--txn-lease %s must be at least twice --txn-call-timeout %s", f.lease, f.callTimeout)
	}
	deny := []netip.Prefix{} // non-nil: an empty flag allows every address
	for _, s := range f.denyNets {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--txn-deny-nets %q: want a CIDR such as 169.254.0.0/16: %w", s, err)
		}
		deny = append(deny, p.Masked())
	}
	st, err := f.openStore(ctx, dataDir)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := coordinator.New(coordinator.Options{Store: st, Log: log, Registry: reg, Owner: f.owner, Lease: f.lease,
		CallTimeout: f.callTimeout, DefaultTimeout: f.timeout, WebhookURL: f.webhook, Retention: f.retention, DenyNets: deny})
	if err != nil {
		_ = st.Close()
		return nil, nil, nil, err
	}
	log.Info("TCC coordinator ready", zap.String("store", f.storeKind), zap.String("owner", c.Owner()))
	if d := store.RedisDurability(st); d != "" && d != "appendonly yes, appendfsync always" {
		log.Warn("the Redis store is not fsynced before each answer: a crash of Redis can lose acknowledged changes", zap.String("redis", d))
	}
	return c, st, rest.New(c, log), nil
}

func runCoordinator(c *coordinator.Coordinator, st store.Store) func(context.Context) error {
	return func(ctx context.Context) error {
		err := c.Run(ctx)
		_ = st.Close()
		return err
	}
}

func init() {
	registerServeModule(serveModule{
		name:  "txn",
		flags: serveTxn.add,
		start: func(ctx context.Context, env *moduleEnv) (func(context.Context) error, error) {
			c, st, h, err := serveTxn.start(ctx, env.Log, env.Registry, env.DataDir)
			if err != nil {
				return nil, err
			}
			env.HTTP.Mount(rest.Prefix, h)
			env.HTTP.Mount(rest.TwistPrefix, h)
			grpcapi.Register(env.GRPC, c)
			if env.Kube != nil {
				if err := handleTCCPolicies(env, c); err != nil { // txnkube.go
					return nil, err
				}
			}
			return runCoordinator(c, st), nil
		},
	})
	registerCommand(newTxnCommand)
}

func newTxnCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "txn", Short: "TCC transaction coordinator: serve it alone, list and show transactions"}
	cmd.AddCommand(newTxnServeCommand(g), newTxnListCommand(), newTxnShowCommand())
	return cmd
}

func newTxnServeCommand(g *globalFlags) *cobra.Command {
	f := &txnFlags{}
	var httpAddr, grpcAddr, dataDir string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run only the TCC coordinator (REST, gRPC, /metrics), for scale-out replicas on one PostgreSQL store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.daemon(cmd, nil, func(ctx context.Context, log *zap.Logger) error {
				return serveTxnAlone(ctx, log, f, httpAddr, grpcAddr, dataDir)
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&httpAddr, "http-addr", ":8080", "HTTP listen address: /api/txn, /api/transactions, /metrics, /healthz, /readyz [ROSEN_HTTP_ADDR]")
	fs.StringVar(&grpcAddr, "grpc-addr", ":15010", "gRPC listen address: rosen.txn.v1.Coordinator (empty: no gRPC) [ROSEN_GRPC_ADDR]")
	fs.StringVar(&dataDir, "data", "./data", "folder for the SQLite store [ROSEN_DATA]")
	f.add(fs)
	return cmd
}

func serveTxnAlone(ctx context.Context, log *zap.Logger, f *txnFlags, httpAddr, grpcAddr, dataDir string) error {
	if f.storeKind == "sqlite" { // the folder holds the store: one process
		release, err := lockData(dataDir)
		if err != nil {
			return err
		}
		defer release()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c, st, h, err := f.start(ctx, log, reg, dataDir)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(rest.Prefix+"/", h)
	mux.Handle(rest.TwistPrefix, h)
	mux.Handle(rest.TwistPrefix+"/", h)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := c.Ready(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	httpLn, err := net.Listen("tcp", httpAddr)
	if err != nil {
		c.Close()
		_ = st.Close()
		return fmt.Errorf("--http-addr: %w", err)
	}
	var grpcServer *grpc.Server
	var grpcLn net.Listener
	if grpcAddr != "" {
		if grpcLn, err = net.Listen("tcp", grpcAddr); err != nil {
			_ = httpLn.Close()
			c.Close()
			_ = st.Close()
			return fmt.Errorf("--grpc-addr: %w", err)
		}
		grpcServer = grpc.NewServer()
		grpcapi.Register(grpcServer, c)
	}
	log.Info("rosen txn serving", zap.String("http", httpLn.Addr().String()), zap.Bool("grpc", grpcServer != nil))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return runCoordinator(c, st)(ctx) })
	eg.Go(func() error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(httpLn) }()
		select {
		case <-ctx.Done():
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shut)
			return nil
		case err := <-errc:
			return err
		}
	})
	if grpcServer != nil {
		eg.Go(func() error {
			go func() { <-ctx.Done(); grpcServer.Stop() }()
			return grpcServer.Serve(grpcLn)
		})
	}
	err = eg.Wait()
	if errors.Is(err, context.Canceled) || errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// txnAddrFlags are the address flags of `rosen txn list/show`: --http-addr
// (and ROSEN_HTTP_ADDR) as `rosen status` and `rosen cqrs status` take it,
// or --server, a URL or host:port.
type txnAddrFlags struct{ server, httpAddr string }

func (a *txnAddrFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.httpAddr, "http-addr", ":8080", "the HTTP address of a running rosen serve or rosen txn serve [ROSEN_HTTP_ADDR]")
	cmd.Flags().StringVar(&a.server, "server", "", "the coordinator's HTTP URL or host:port (instead of --http-addr)")
}

// base is the coordinator's URL without a trailing slash.
func (a *txnAddrFlags) base(cmd *cobra.Command) string {
	if a.server != "" {
		if !strings.Contains(a.server, "://") {
			return "http://" + strings.TrimSuffix(a.server, "/")
		}
		return strings.TrimSuffix(a.server, "/")
	}
	addr := a.httpAddr
	if !cmd.Flags().Changed("http-addr") {
		if v := os.Getenv("ROSEN_HTTP_ADDR"); v != "" {
			addr = v
		}
	}
	return "http://" + dialAddr(addr)
}

func newTxnListCommand() *cobra.Command {
	var addr txnAddrFlags
	var state string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List transactions (newest first) of a running coordinator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if state != "" {
				q.Set("state", state)
			}
			q.Set("limit", fmt.Sprint(limit))
			var out struct {
				Transactions []struct {
					ID, State, Reason, LastError string
					CreatedAt                    time.Time `json:"created_at"`
					Attempts                     int
				}
			}
			if err := getJSON(cmd.Context(), addr.base(cmd)+rest.Prefix+"/transactions?"+q.Encode(), &out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			_, _ = fmt.Fprintf(w, "%-36s %-11s %-25s %s\n", "ID", "STATE", "CREATED", "NOTE")
			for _, t := range out.Transactions {
				note := t.Reason
				if t.LastError != "" {
					note = t.LastError
				}
				_, _ = fmt.Fprintf(w, "%-36s %-11s %-25s %s\n", t.ID, t.State, t.CreatedAt.Format(time.RFC3339), note)
			}
			return nil
		},
	}
	addr.add(cmd)
	cmd.Flags().StringVar(&state, "state", "", "only this state: trying, confirming, cancelling, committed, aborted, stuck")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many")
	return cmd
}

func newTxnShowCommand() *cobra.Command {
	var addr txnAddrFlags
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one transaction with its branches, attempts and last errors (JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out json.RawMessage
			if err := getJSON(cmd.Context(), addr.base(cmd)+rest.Prefix+"/transactions/"+url.PathEscape(args[0]), &out); err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			var v any
			_ = json.Unmarshal(out, &v)
			return enc.Encode(v)
		},
	}
	addr.add(cmd)
	return cmd
}

func getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("coordinator answered %d: %s", resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}
