package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/rosenmesh/rosen/console"
	"github.com/rosenmesh/rosen/controlplane/runner"
	"github.com/rosenmesh/rosen/controlplane/source/file"
	"github.com/rosenmesh/rosen/controlplane/xds"
	"github.com/rosenmesh/rosen/examples"
)

type serveFlags struct {
	configDirs []string
	grpcAddr   string
	httpAddr   string
	dataDir    string
	debounce   time.Duration
}

func newServeCommand(g *globalFlags) *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve xDS (gRPC) and the console (HTTP) for the configuration in --config",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.daemon(cmd, nil, func(ctx context.Context, log *zap.Logger) error {
				return serve(ctx, log, f, !cmd.Flags().Changed("config"))
			})
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&f.configDirs, "config", []string{"examples/bookinfo"}, "configuration folders (or files) of Istio and Kubernetes YAML, watched for changes [ROSEN_CONFIG]")
	fs.StringVar(&f.grpcAddr, "grpc-addr", ":15010", "gRPC listen address: xDS (ADS, delta and per-type) [ROSEN_GRPC_ADDR]")
	fs.StringVar(&f.httpAddr, "http-addr", ":8080", "HTTP listen address: probes, /metrics, /debug/*, and the modules' APIs (transactions, CQRS events, policy status); unauthenticated: keep it on a private network [ROSEN_HTTP_ADDR]")
	fs.StringVar(&f.dataDir, "data", "./data", "folder for Rosen's state [ROSEN_DATA]")
	fs.DurationVar(&f.debounce, "debounce", 200*time.Millisecond, "quiet time after the last config write before it is applied [ROSEN_DEBOUNCE]")
	for _, m := range serveModules {
		if m.flags != nil {
			m.flags(fs)
		}
	}
	return cmd
}

func serve(ctx context.Context, log *zap.Logger, f *serveFlags, defaultConfig bool) error {
	release, err := lockData(f.dataDir)
	if err != nil {
		return err
	}
	defer release()
	dirs := f.configDirs
	if defaultConfig && kubeOpts.enabled() {
		dirs = nil // --kubeconfig alone: the clusters are the only source (kube.go)
	}
	if defaultConfig && len(dirs) > 0 {
		if _, err := os.Stat(dirs[0]); errors.Is(err, os.ErrNotExist) {
			// Run from outside the repo: serve the example that is built into the binary.
			// Written once; later edits there are kept across restarts.
			dir := filepath.Join(f.dataDir, "examples", "bookinfo")
			if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
				if err := examples.WriteBookinfo(dir); err != nil {
					return err
				}
			}
			log.Info("no --config given and examples/bookinfo not found here; serving the built-in example from the data folder", zap.String("dir", dir))
			dirs = []string{dir}
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			return fmt.Errorf("--config: %w", err)
		}
	}
	if f.debounce < 0 {
		return fmt.Errorf("--debounce %s: want 0 or more", f.debounce)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	xdsServer := xds.New(log, xds.DefaultGenerator(), xds.Options{Registry: reg, IsolateGroupFailures: true})
	kw, err := kubeOpts.newKubeWiring(log, reg)
	if err != nil {
		return err
	}
	var sources []runner.Source
	if len(dirs) > 0 {
		sources = append(sources, file.New(dirs, log, f.debounce))
	}
	if kw != nil {
		sources = append(sources, kw.src)
	}
	pipeline := runner.New(log, runner.Merge(sources...), xdsServer, reg)

	grpcLn, err := net.Listen("tcp", f.grpcAddr)
	if err != nil {
		return fmt.Errorf("--grpc-addr: %w", err)
	}
	httpLn, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		_ = grpcLn.Close()
		return fmt.Errorf("--http-addr: %w", err)
	}
	grpcServer := grpc.NewServer(xds.ServerOptions()...)
	xdsServer.Register(grpcServer)
	healthServer := health.NewServer()
	healthpb.RegisterHealthServer(grpcServer, healthServer)
	reflection.Register(grpcServer)

	httpServer := console.New(console.Options{
		Log: log, Gatherer: reg, ControlPlane: pipeline, Version: version,
	})

	var runs []func(context.Context) error

	if kw != nil {
		kw.attach(pipeline, httpServer)
		runs = append(runs, kw.run)
	}
	env := &moduleEnv{Log: log, Registry: reg, GRPC: grpcServer, HTTP: httpServer, DataDir: f.dataDir, Config: dirs, OnMesh: pipeline.OnAccepted}
	if kw != nil {
		env.Kube = kw.src
	}
	for _, m := range serveModules {
		run, err := m.start(ctx, env)
		if err != nil {
			_ = grpcLn.Close()
			_ = httpLn.Close()
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if run != nil {
			runs = append(runs, run)
		}
	}

	log.Info("rosen serving",
		zap.String("version", version), zap.Strings("config", dirs),
		zap.String("grpc", grpcLn.Addr().String()), zap.String("http", httpLn.Addr().String()))

	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return pipeline.Run(ctx) })
	eg.Go(func() error {
		errc := make(chan error, 1)
		go func() { errc <- grpcServer.Serve(grpcLn) }()
		select {
		case <-ctx.Done():
			healthServer.Shutdown()
			stopped := make(chan struct{})
			go func() { grpcServer.GracefulStop(); close(stopped) }()
			select {
			case <-stopped:
			case <-time.After(5 * time.Second):
				grpcServer.Stop()
			}
			return nil
		case err := <-errc:
			return err
		}
	})
	eg.Go(func() error { return httpServer.Serve(ctx, httpLn) })
	for _, run := range runs {
		eg.Go(func() error { return run(ctx) })
	}
	err = eg.Wait()
	log.Info("rosen stopped")
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
