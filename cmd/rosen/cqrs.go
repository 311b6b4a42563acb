package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/cqrs/service"
	"github.com/rosenmesh/rosen/cqrs/source"
	"github.com/rosenmesh/rosen/policy/folderwatch"
)

// cqrsFlags are the CQRS engine's flags, shared by `rosen serve` and `rosen cqrs serve`.
type cqrsFlags struct {
	dir        string
	rules      []string
	databases  []string
	exporters  []string
	sources    []string
	natsURL    string
	natsListen string
	stream     string
	subject    string
	partitions int
	worker     int
	workers    int
	batch      int
	linger     time.Duration
}

var cqrsOpts = &cqrsFlags{}

func init() {
	registerServeModule(serveModule{name: "cqrs", flags: cqrsOpts.register, start: cqrsOpts.start})
	registerCommand(newCQRSCommand)
}

func (f *cqrsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.dir, "cqrs-dir", "", "folder with rules*.json|yaml, databases*.json|yaml and exporter*.json|yaml; empty (and no --cqrs-rules): the CQRS engine is off [ROSEN_CQRS_DIR]")
	fs.StringSliceVar(&f.rules, "cqrs-rules", nil, "CQRS rules files (Gravity's rules.json shape) [ROSEN_CQRS_RULES]")
	fs.StringSliceVar(&f.databases, "cqrs-databases", nil, "CQRS databases files (databases.json shape) [ROSEN_CQRS_DATABASES]")
	fs.StringSliceVar(&f.exporters, "cqrs-exporters", nil, "CQRS exporter files (exporter.json shape) [ROSEN_CQRS_EXPORTERS]")
	fs.StringSliceVar(&f.sources, "cqrs-source", nil, "extra broker sources beside the event store: kafka://host:9092/topic?group=g, amqp://user:pass@host:5672/?queue=q [ROSEN_CQRS_SOURCE]")
	fs.StringVar(&f.natsURL, "cqrs-nats-url", "", "external NATS JetStream for the event store (nats://127.0.0.1:4222); empty: embedded under --data [ROSEN_CQRS_NATS_URL]")
	fs.StringVar(&f.natsListen, "cqrs-nats-listen", "", "let the embedded NATS listen here for other workers (127.0.0.1:0 picks a port); empty: in-process only [ROSEN_CQRS_NATS_LISTEN]")
	fs.StringVar(&f.stream, "cqrs-stream", "ROSEN_CQRS", "JetStream stream of the event store [ROSEN_CQRS_STREAM]")
	fs.StringVar(&f.subject, "cqrs-subject", "rosen.cqrs.events", "subject prefix of the event store (events go to <prefix>.<partition>.<type>) [ROSEN_CQRS_SUBJECT]")
	fs.IntVar(&f.partitions, "cqrs-partitions", 1, "partitions of the event store, by event key; fixed once events are stored [ROSEN_CQRS_PARTITIONS]")
	fs.IntVar(&f.worker, "cqrs-worker", 0, "this worker's index: it consumes partitions p with p % workers == index [ROSEN_CQRS_WORKER]")
	fs.IntVar(&f.workers, "cqrs-workers", 1, "number of workers sharing the partitions [ROSEN_CQRS_WORKERS]")
	fs.IntVar(&f.batch, "cqrs-batch", 2000, "largest batch of events per transaction [ROSEN_CQRS_BATCH]")
	fs.DurationVar(&f.linger, "cqrs-linger", 5*time.Millisecond, "how long a batch waits to fill [ROSEN_CQRS_LINGER]")
}

func (f *cqrsFlags) files() (rules.Files, error) {
	files := rules.Files{Rules: f.rules, Databases: f.databases, Exporters: f.exporters}
	if f.dir != "" {
		d, err := rules.DirFiles(f.dir)
		if err != nil {
			return files, err
		}
		files.Rules = append(d.Rules, files.Rules...)
		files.Databases = append(d.Databases, files.Databases...)
		files.Exporters = append(d.Exporters, files.Exporters...)
	}
	return files, nil
}

func (f *cqrsFlags) enabled() bool { return f.dir != "" || len(f.rules) > 0 }

// watchEdits logs, once per change until ctx ends, that an edit of the
// CQRS files does not reach the running engine: its rules, databases and
// exporters are read at start (a view's rules changing under a running
// projection would need a replay), so an edit needs a restart. It was
// silent, and a user took the edit for applied.
func (f *cqrsFlags) watchEdits(ctx context.Context, log *zap.Logger, interval time.Duration) {
	paths := append(append(append([]string{}, f.rules...), f.databases...), f.exporters...)
	if f.dir != "" {
		paths = append(paths, f.dir)
	}
	var wg sync.WaitGroup
	for _, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			folderwatch.Poll(ctx, p, interval, func() {
				log.Warn("CQRS configuration edited; the running engine keeps the rules it started with: check with rosen cqrs validate, then restart to apply", zap.String("path", p))
			}, func(error) {})
		}()
	}
	wg.Wait()
}

func (f *cqrsFlags) open(ctx context.Context, log *zap.Logger, reg prometheus.Registerer, dataDir string) (*service.Service, error) {
	files, err := f.files()
	if err != nil {
		return nil, err
	}
	return service.Open(ctx, service.Options{
		Files: files, DataDir: dataDir, Sources: f.sources, Worker: f.worker, Workers: f.workers, BatchSize: f.batch, Linger: f.linger,
		Log: log, Registry: reg,
		JetStream: source.JetStreamConfig{URL: f.natsURL, Listen: f.natsListen, Stream: f.stream, Subject: f.subject, Partitions: f.partitions},
	})
}

func (f *cqrsFlags) start(ctx context.Context, env *moduleEnv) (func(context.Context) error, error) {
	if env.Kube != nil {
		return f.startWithKube(ctx, env) // cqrskube.go: plus CQRSRules from the clusters
	}
	if !f.enabled() {
		env.Log.Named("cqrs").Info("no --cqrs-dir or --cqrs-rules: the CQRS engine is off")
		return nil, nil
	}
	svc, err := f.open(ctx, env.Log, env.Registry, env.DataDir)
	if err != nil {
		return nil, err // serve prefixes the module name
	}
	env.HTTP.Mount("/api/cqrs", svc.Handler())
	return func(ctx context.Context) error {
		defer svc.Close()
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { f.watchEdits(wctx, env.Log.Named("cqrs"), 2*time.Second); close(done) }()
		defer func() { stop(); <-done }()
		return svc.Run(ctx)
	}, nil
}

func newCQRSCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "cqrs", Short: "The CQRS engine: events in, read models out (Gravity's rules)"}
	cmd.AddCommand(newCQRSServeCommand(g), newCQRSStatusCommand(), newCQRSDeadLettersCommand(), newCQRSReplayCommand(), newCQRSSnapshotCommand(), newCQRSValidateCommand())
	return cmd
}

func newCQRSServeCommand(g *globalFlags) *cobra.Command {
	f := &cqrsFlags{}
	var dataDir, httpAddr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a CQRS worker alone (its HTTP API, /metrics and /healthz on --http-addr)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.daemon(cmd, func() error {
				if !f.enabled() {
					return errors.New("cqrs serve needs --cqrs-dir or --cqrs-rules")
				}
				return nil
			}, func(ctx context.Context, log *zap.Logger) error {
				if f.natsURL == "" { // the embedded event store lives in the folder: one server
					release, err := lockData(dataDir)
					if err != nil {
						return err
					}
					defer release()
				}
				reg := prometheus.NewRegistry()
				reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
				svc, err := f.open(ctx, log, reg, dataDir)
				if err != nil {
					return err
				}
				defer svc.Close()
				mux := http.NewServeMux()
				mux.Handle("/api/cqrs/", svc.Handler())
				mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
				mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
				ln, err := net.Listen("tcp", httpAddr)
				if err != nil {
					return fmt.Errorf("--http-addr: %w", err)
				}
				srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
				go func() { _ = srv.Serve(ln) }()
				log.Info("cqrs worker listening", zap.String("http", ln.Addr().String()), zap.String("eventStore", svc.EventStore().ClientURL()))
				wctx, stop := context.WithCancel(ctx)
				watched := make(chan struct{})
				go func() { f.watchEdits(wctx, log, 2*time.Second); close(watched) }()
				err = svc.Run(ctx)
				stop()
				<-watched
				shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(shutdown)
				return err
			})
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&dataDir, "data", "rosen-data", "state folder (embedded event store, SQLite views) [ROSEN_DATA]")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:8080", "HTTP address of the publish/status/replay API and /metrics [ROSEN_HTTP_ADDR]")
	return cmd
}

func cqrsCall(method, addr, path string, out io.Writer, raw bool, table func(io.Writer, []byte) error) error {
	client := &http.Client{Timeout: 30 * time.Minute}
	req, err := http.NewRequest(method, "http://"+dialAddr(addr)+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("is rosen serve (or rosen cqrs serve) running? %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	if raw || table == nil {
		_, err = out.Write(body)
		return err
	}
	return table(out, body)
}

func newCQRSStatusCommand() *cobra.Command {
	var httpAddr string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the CQRS rules of a running Rosen: events, dead letters, last sequence",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cqrsCall(http.MethodGet, httpAddr, "/api/cqrs/status", cmd.OutOrStdout(), asJSON, printCQRSStatus)
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http-addr", envOr("ROSEN_HTTP_ADDR", "127.0.0.1:8080"), "Rosen's HTTP address [ROSEN_HTTP_ADDR]")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON")
	return cmd
}

func printCQRSStatus(w io.Writer, body []byte) error {
	var st service.StatusReport
	if err := json.Unmarshal(body, &st); err != nil {
		return err
	}
	fmt.Fprintf(w, "event store %s: last seq %d, processed up to %d (%d events in %d batches), dead letters stored %d, partitions %v\n",
		st.EventStore, st.StoreLastSeq, st.LastSeq, st.Events, st.Batches, st.StoredDead, st.Partitions)
	if st.LastError != "" {
		fmt.Fprintf(w, "retrying: %s\n", st.LastError)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VIEW\tEVENT\tDATABASE.TABLE\tMETHOD\tEVENTS\tDEAD\tLAST SEQ\tEXPORTERS")
	for _, r := range st.Rules {
		fmt.Fprintf(tw, "%s\t%s\t%s.%s\t%s\t%d\t%d\t%d\t%s\n", r.View, r.Event, r.Database, r.Table, r.Method, r.Events, r.DeadLetters, r.LastSeq, strings.Join(r.Exporters, ","))
	}
	return tw.Flush()
}

func newCQRSDeadLettersCommand() *cobra.Command {
	var httpAddr, view string
	var limit int
	var before uint64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "dead-letters [--view NAME] [--limit N] [--before SEQ]",
		Short: "List the events the CQRS engine refused, newest first, with the reason (the events stay in the dead-letter stream)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			q.Set("limit", strconv.Itoa(limit))
			if view != "" {
				q.Set("view", view)
			}
			if before > 0 {
				q.Set("before", strconv.FormatUint(before, 10))
			}
			return cqrsCall(http.MethodGet, httpAddr, "/api/cqrs/dead-letters?"+q.Encode(), cmd.OutOrStdout(), asJSON, printDeadLetters)
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http-addr", envOr("ROSEN_HTTP_ADDR", "127.0.0.1:8080"), "Rosen's HTTP address [ROSEN_HTTP_ADDR]")
	cmd.Flags().StringVar(&view, "view", "", "only this view's letters")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many (1..1000)")
	cmd.Flags().Uint64Var(&before, "before", 0, "only letters stored before this dead-letter sequence (the next page: the last SEQ shown)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON (with each event)")
	return cmd
}

func printDeadLetters(w io.Writer, body []byte) error {
	var v struct {
		DeadLetters []source.Letter `json:"deadLetters"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	if len(v.DeadLetters) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tEVENT SEQ\tVIEW\tTIME\tREASON")
	for _, l := range v.DeadLetters {
		reason := l.Reason
		if l.Omitted != "" {
			reason += " [event not stored here: " + l.Omitted + "]"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", l.Seq, l.EventSeq, printable(l.Rule), l.Time.UTC().Format(time.RFC3339), printable(reason))
	}
	return tw.Flush()
}

func newCQRSReplayCommand() *cobra.Command {
	var httpAddr, view, from string
	cmd := &cobra.Command{
		Use:   "replay --view NAME [--from SEQ|TIME]",
		Short: "Rebuild a view from the event store into a shadow table and swap it in while live events keep flowing (from the start, a sequence, an RFC 3339 time or the last snapshot); also backfills a new rule",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if view == "" {
				return errors.New("--view is required")
			}
			if from != "snapshot" {
				if _, _, err := service.ParseFrom(from); err != nil {
					return err
				}
			}
			q := url.Values{"view": {view}}
			if from != "" {
				q.Set("from", from)
			}
			return cqrsCall(http.MethodPost, httpAddr, "/api/cqrs/replay?"+q.Encode(), cmd.OutOrStdout(), true, nil)
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http-addr", envOr("ROSEN_HTTP_ADDR", "127.0.0.1:8080"), "Rosen's HTTP address [ROSEN_HTTP_ADDR]")
	cmd.Flags().StringVar(&view, "view", "", "the view (a rule's name, or its table)")
	cmd.Flags().StringVar(&from, "from", "", "stream sequence or RFC 3339 time to replay from, or \"snapshot\" (restore the last snapshot, replay after it); empty: rebuild from scratch")
	return cmd
}

func newCQRSSnapshotCommand() *cobra.Command {
	var httpAddr, view string
	cmd := &cobra.Command{
		Use:   "snapshot --view NAME",
		Short: "Copy a view's rows and offsets so that `replay --from snapshot` rebuilds it quickly",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if view == "" {
				return errors.New("--view is required")
			}
			return cqrsCall(http.MethodPost, httpAddr, "/api/cqrs/snapshot?"+url.Values{"view": {view}}.Encode(), cmd.OutOrStdout(), true, nil)
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http-addr", envOr("ROSEN_HTTP_ADDR", "127.0.0.1:8080"), "Rosen's HTTP address [ROSEN_HTTP_ADDR]")
	cmd.Flags().StringVar(&view, "view", "", "the view (a rule's name, or its table)")
	return cmd
}

func newCQRSValidateCommand() *cobra.Command {
	f := &cqrsFlags{}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check CQRS rules, databases and exporters; print the rules they make",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			files, err := f.files()
			if err != nil {
				return err
			}
			cfg, err := rules.Load(files)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EVENT\tVIEW\tDATABASE.TABLE\tMETHOD\tKEY\tEXPORTERS\tFROM")
			for _, r := range cfg.Rules {
				fmt.Fprintf(tw, "%s\t%s\t%s.%s\t%s\t%s\t%s\t%s\n", r.Event, r.ViewName(), r.Database, r.Table, r.Method,
					strings.Join(r.PrimaryColumns(), ","), strings.Join(r.Exporter, ","), r.Where())
			}
			return tw.Flush()
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
