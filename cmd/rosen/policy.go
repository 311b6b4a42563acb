package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"sigs.k8s.io/yaml"

	"github.com/rosenmesh/rosen/console"
	"github.com/rosenmesh/rosen/policy/authz"
	"github.com/rosenmesh/rosen/policy/folderwatch"
	"github.com/rosenmesh/rosen/policy/jwt"
	"github.com/rosenmesh/rosen/policy/ratelimit"
)

// policyFlags are `rosen serve`'s flags for ext_authz and the RLS.
type policyFlags struct {
	dir        string
	query      string
	timeout    time.Duration
	dryRun     bool
	maxBody    int
	jwtFile    string
	jwtSkew    time.Duration
	rlConfig   string
	rlRedis    string
	rlHeaders  bool
	pollPeriod time.Duration
}

var policyOpts = &policyFlags{}

func init() {
	registerServeModule(serveModule{name: "policy", flags: policyOpts.register, start: policyOpts.start})
	registerCommand(newPolicyCommand)
}

func (f *policyFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.dir, "policy-dir", "", "folder of Rego policies (and JSON/YAML data) for ext_authz, hot-reloaded; empty: ext_authz denies every request [ROSEN_POLICY_DIR]")
	fs.StringVar(&f.query, "policy-query", authz.DefaultQuery, "the decision ext_authz evaluates (OPA-Envoy's default) [ROSEN_POLICY_QUERY]")
	fs.DurationVar(&f.timeout, "policy-timeout", 100*time.Millisecond, "deadline of one policy evaluation; past it the request is denied [ROSEN_POLICY_TIMEOUT]")
	fs.BoolVar(&f.dryRun, "policy-dry-run", false, "evaluate and log policies but allow what they deny [ROSEN_POLICY_DRY_RUN]")
	fs.IntVar(&f.maxBody, "policy-max-body", 1<<20, "largest request body parsed into input.parsed_body [ROSEN_POLICY_MAX_BODY]")
	fs.StringVar(&f.jwtFile, "policy-jwt", "", "YAML list of JWT providers (issuer, jwksUri, audiences, fromHeaders, fromParams) verified inside ext_authz [ROSEN_POLICY_JWT]")
	fs.DurationVar(&f.jwtSkew, "policy-jwt-skew", time.Minute, "clock skew allowed on JWT exp/nbf [ROSEN_POLICY_JWT_SKEW]")
	fs.StringVar(&f.rlConfig, "ratelimit-config", "", "folder (or file) of envoyproxy/ratelimit YAML, hot-reloaded [ROSEN_RATELIMIT_CONFIG]")
	fs.StringVar(&f.rlRedis, "ratelimit-redis", "", "Redis URL for rate-limit counters (redis://host:6379/0); empty: in memory [ROSEN_RATELIMIT_REDIS]")
	fs.BoolVar(&f.rlHeaders, "ratelimit-headers", true, "add x-ratelimit-limit/-remaining/-reset to RLS answers [ROSEN_RATELIMIT_HEADERS]")
	fs.DurationVar(&f.pollPeriod, "policy-poll", time.Second, "how often policy and rate-limit folders are checked for changes [ROSEN_POLICY_POLL]")
}

func loadProviders(file string) ([]jwt.Provider, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--policy-jwt: %w", err)
	}
	var ps []jwt.Provider
	if err := yaml.UnmarshalStrict(data, &ps); err != nil {
		return nil, fmt.Errorf("--policy-jwt %s: %w", file, err)
	}
	return ps, nil
}

func (f *policyFlags) start(ctx context.Context, env *moduleEnv) (func(context.Context) error, error) {
	log := env.Log.Named("policy")
	opts := authz.Options{
		Log: env.Log, Registry: env.Registry, Timeout: f.timeout, DryRun: f.dryRun,
		Input: authz.InputOptions{MaxBodyBytes: f.maxBody},
	}
	var static []jwt.Provider
	if f.jwtFile != "" {
		ps, err := loadProviders(f.jwtFile)
		if err != nil {
			return nil, err
		}
		static = ps
	}
	v, err := jwt.New(nil, jwt.Options{Skew: f.jwtSkew})
	if err != nil {
		return nil, fmt.Errorf("--policy-jwt: %w", err)
	}
	mj := &meshJWT{log: log, dirs: env.Config, static: static, tokens: jwt.NewReloadable(v)}
	fromMesh, err := mj.meshProviders()
	if err != nil {
		// A --config that does not load is reported by the control plane; the
		// static providers serve until it is fixed.
		log.Error("JWT providers from --config not loaded", zap.Error(err))
	}
	if err := mj.apply(fromMesh); err != nil {
		return nil, fmt.Errorf("--policy-jwt: %w", err)
	}
	opts.Tokens = mj.tokens
	az := authz.New(opts)
	az.Register(env.GRPC)
	if f.dir != "" {
		// A folder that is not there (a typo) is refused, as --ratelimit-config
		// and --cqrs-dir are. A policy that does not compile at start is
		// logged and shown as rejected; requests are denied until it is fixed.
		if err := checkPolicyDir(f.dir); err != nil {
			return nil, err
		}
		_ = az.Reload(ctx, f.dir, f.query)
	} else {
		log.Info("no --policy-dir: ext_authz denies every request")
	}

	rlOpts := ratelimit.Options{Log: env.Log, Registry: env.Registry, Headers: f.rlHeaders}
	var rdb *redis.Client
	if f.rlRedis != "" {
		ro, err := redis.ParseURL(f.rlRedis)
		if err != nil {
			return nil, fmt.Errorf("--ratelimit-redis: %w", err)
		}
		rdb = redis.NewClient(ro)
		rlOpts.Counters = ratelimit.NewRedis(rdb)
	}
	rl := ratelimit.New(rlOpts)
	rl.Register(env.GRPC)
	if f.rlConfig != "" {
		if err := rl.Reload(f.rlConfig); err != nil {
			if rdb != nil {
				_ = rdb.Close()
			}
			return nil, fmt.Errorf("--ratelimit-config: %w", err)
		}
	}

	env.HTTP.Mount("/api/policy/decisions", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, az.Decisions())
	}))
	env.HTTP.Mount("/api/policy/status", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, policyStatus(f, az, rl))
	}))
	env.HTTP.AddRejections(policyRejections{az: az, rl: rl})

	return func(ctx context.Context) error {
		defer func() {
			if rdb != nil {
				_ = rdb.Close()
			}
		}()
		done := make(chan struct{}, 4)
		run := func(fn func()) { go func() { fn(); done <- struct{}{} }() }
		n := 0
		if f.dir != "" {
			n++
			run(func() { _ = az.Watch(ctx, f.dir, f.query, f.pollPeriod) })
		}
		if f.rlConfig != "" {
			n++
			run(func() { rl.Watch(ctx, f.rlConfig, f.pollPeriod) })
		}
		n++
		run(func() { rl.SweepEvery(ctx, time.Minute) })
		if env.OnMesh != nil {
			// Follow the control plane's published mesh: one config path,
			// no second parse of every file on every change.
			env.OnMesh(mj.follow)
		} else if len(mj.dirs) > 0 {
			n++
			run(func() { mj.watch(ctx, f.pollPeriod) })
		}
		for ; n > 0; n-- {
			<-done
		}
		log.Info("policy module stopped")
		return nil
	}, nil
}

// checkPolicyDir refuses a --policy-dir that cannot be read at start.
func checkPolicyDir(dir string) error {
	if _, err := folderwatch.Fingerprint(dir); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == dir {
			err = pe.Err
		}
		return fmt.Errorf("--policy-dir %s: %w", dir, err)
	}
	return nil
}

// policyStatus is GET /api/policy/status: what is in force and, for the
// policy folder and the rate-limit config each, the current rejection
// (null when the last load was accepted).
func policyStatus(f *policyFlags, az *authz.Server, rl *ratelimit.Service) map[string]any {
	st := map[string]any{"dry_run": f.dryRun, "policy_rejection": az.Rejection(), "ratelimit_rejection": rl.Rejection()}
	if p := az.Policy(); p != nil {
		st["policy_version"], st["policy_files"] = p.Version, p.Files
	}
	if c := rl.Config(); c != nil {
		st["ratelimit_version"], st["ratelimit_files"] = c.Version, c.Files
	}
	return st
}

// policyRejections shows the policy folder's and the rate-limit config's
// refused loads in /debug/config-errors.
type policyRejections struct {
	az *authz.Server
	rl *ratelimit.Service
}

func (p policyRejections) Rejections() []console.ModuleError {
	var out []console.ModuleError
	add := func(source string, r *folderwatch.Rejection) {
		if r != nil {
			out = append(out, console.ModuleError{Source: source, Path: r.Path, Message: r.Error, Time: r.Time, InForce: r.InForce})
		}
	}
	add("policy", p.az.Rejection())
	add("ratelimit", p.rl.Rejection())
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func newPolicyCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Work with ext_authz Rego policies"}
	var query string
	var verbose bool
	test := &cobra.Command{
		Use:   "test DIR",
		Short: "Run the Rego tests in DIR (OPA test semantics) and replay its recorded CheckRequests (*.check.json)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return policyTest(cmd.Context(), cmd.OutOrStdout(), args[0], query, verbose)
		},
	}
	test.Flags().StringVar(&query, "query", authz.DefaultQuery, "the decision the recorded requests are replayed against")
	test.Flags().BoolVarP(&verbose, "verbose", "v", false, "print passing cases too")
	cmd.AddCommand(test)
	_ = g
	return cmd
}

func policyTest(ctx context.Context, out interface{ Write([]byte) (int, error) }, dir, query string, verbose bool) error {
	p, err := authz.Load(ctx, dir, query)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	tests, err := authz.RunRegoTests(ctx, p)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	checks, err := authz.LoadChecks(dir)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	replayed := authz.Replay(ctx, p, checks)
	pass, fail := 0, 0
	report := func(kind string, rs []authz.CaseResult) {
		for _, r := range rs {
			if r.Pass {
				pass++
				if verbose {
					fmt.Fprintf(out, "PASS %s %s (%s)\n", kind, r.Name, r.Time.Round(time.Microsecond))
				}
				continue
			}
			fail++
			fmt.Fprintf(out, "FAIL %s %s [%s]: %s\n", kind, r.Name, r.File, r.Detail)
		}
	}
	report("rego", tests)
	report("check", replayed)
	fmt.Fprintf(out, "policy %s (%d files): %d rego tests, %d recorded checks\n", p.Version, len(p.Files), len(tests), len(replayed))
	fmt.Fprintf(out, "%d passed, %d failed\n", pass, fail)
	if fail > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d failed", fail, pass+fail)}
	}
	return nil
}
