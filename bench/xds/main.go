// Command xds is Rosen's xDS load benchmark: it generates a mesh of M
// services, starts `rosen serve` on it, opens N ADS streams that behave like
// Envoy (or like proxyless gRPC clients) and measures initial sync, the
// propagation of a new service and of an endpoint-only edit, RSS per proxy
// and CPU per push. It only talks to 127.0.0.1 and stops by itself.
//
//	go run ./bench/xds -proxies 1000 -services 1000 -mode sotw -kind gateway -out result.json
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

type options struct {
	proxies, services, perConn, files, repeats int
	serviceRepeats                             int
	mode, kind, rosen, out, heapProfile        string
	cpuProfile                                 string
	cpuProfileFor                              time.Duration
	debounce, timeout, connectTimeout          time.Duration
	changeTimeout, settle                      time.Duration
	validate, keep                             bool
}

func main() {
	var o options
	flag.IntVar(&o.proxies, "proxies", 100, "number of ADS streams (proxies), each with its own node id")
	flag.IntVar(&o.services, "services", 100, "number of generated services")
	flag.IntVar(&o.perConn, "per-conn", 50, "ADS streams per gRPC connection")
	flag.IntVar(&o.files, "files", 10, "config files the services are spread over")
	flag.IntVar(&o.repeats, "repeats", 5, "measured changes of each kind")
	flag.IntVar(&o.serviceRepeats, "service-repeats", -1, "measured new-service changes (default: -repeats; 0 measures endpoint edits alone, e.g. to profile them)")
	flag.StringVar(&o.mode, "mode", "sotw", "xDS variant: sotw or delta")
	flag.StringVar(&o.kind, "kind", kindGateway, "proxy kind: gateway or proxyless")
	flag.StringVar(&o.rosen, "rosen", "", "rosen binary (default: go build ./cmd/rosen into the work folder)")
	flag.StringVar(&o.out, "out", "", "write the result as JSON to this file")
	flag.DurationVar(&o.debounce, "debounce", 20*time.Millisecond, "rosen serve --debounce")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "the whole run's deadline")
	flag.DurationVar(&o.connectTimeout, "connect-timeout", 3*time.Minute, "deadline for all proxies to sync")
	flag.DurationVar(&o.changeTimeout, "change-timeout", time.Minute, "deadline for one change to reach every proxy")
	flag.DurationVar(&o.settle, "settle", time.Second, "a change ends when no proxy has received anything for this long (responses and CPU up to then are counted)")
	flag.BoolVar(&o.validate, "validate", true, "run `rosen validate` on the generated folder first")
	flag.BoolVar(&o.keep, "keep", false, "keep the work folder (config, rosen.log)")
	flag.StringVar(&o.heapProfile, "heap-profile", "", "save rosen's heap profile (/debug/pprof/heap) here once every proxy has synced")
	flag.StringVar(&o.cpuProfile, "cpu-profile", "", "save rosen's CPU profile (/debug/pprof/profile) of the change phases here")
	flag.DurationVar(&o.cpuProfileFor, "cpu-profile-for", 30*time.Second, "how long -cpu-profile records, from the first change")
	flag.Parse()
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "xds bench:", err)
		os.Exit(2)
	}
	r, err := run(o)
	if r != nil {
		r.printTable(os.Stdout)
		if o.out != "" {
			if werr := r.writeJSON(o.out); werr != nil {
				fmt.Fprintln(os.Stderr, "xds bench:", werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xds bench:", err)
		os.Exit(1)
	}
}

func (o options) check() error {
	switch {
	case o.mode != "sotw" && o.mode != "delta":
		return fmt.Errorf("-mode %q: want sotw or delta", o.mode)
	case o.kind != kindGateway && o.kind != kindProxyless:
		return fmt.Errorf("-kind %q: want gateway or proxyless", o.kind)
	case o.proxies < 1 || o.services < 1 || o.files < 1 || o.repeats < 0 || o.perConn < 1:
		return fmt.Errorf("-proxies, -services, -files, -per-conn must be ≥ 1 and -repeats ≥ 0")
	case o.services+o.repeats > 65536 || o.repeats > 250:
		return fmt.Errorf("at most 65,536 services (incl. -repeats) and 250 repeats (addresses are 127.x.y.z)")
	}
	return nil
}

func run(o options) (*result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	r := &result{
		Kind: o.kind, Mode: o.mode, Proxies: o.proxies, Services: o.services, PerConn: o.perConn, Files: o.files,
		Debounce: o.debounce.String(), Repeats: o.repeats, GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(),
		Load: loadAvg(), Started: time.Now().UTC().Format(time.RFC3339),
	}
	work, err := os.MkdirTemp("", "rosen-bench-xds-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if ok && !o.keep {
			_ = os.RemoveAll(work)
		} else {
			fmt.Fprintf(os.Stderr, "xds bench: work folder kept: %s\n", work)
		}
	}()
	spec := meshSpec{kind: o.kind, services: o.services, files: o.files}
	cfgDir := filepath.Join(work, "config")
	if err := spec.write(cfgDir); err != nil {
		return nil, err
	}
	bin := o.rosen
	if bin == "" {
		if bin, err = buildRosen(ctx, work); err != nil {
			return nil, err
		}
	}
	r.Rosen = bin
	if o.validate {
		d, err := validateConfig(ctx, bin, cfgDir)
		if err != nil {
			return nil, err
		}
		r.ValidateSeconds = d.Seconds()
	}
	started := time.Now()
	proc, err := startRosen(bin, cfgDir, work, o.debounce)
	if err != nil {
		return nil, err
	}
	defer proc.stop()
	readyCtx, readyCancel := context.WithTimeout(ctx, 2*time.Minute)
	err = proc.waitReady(readyCtx)
	readyCancel()
	if err != nil {
		return nil, err
	}
	r.ReadySeconds = time.Since(started).Seconds()
	b := &bench{o: o, r: r, spec: spec, cfgDir: cfgDir, proc: proc}
	clientCPU0, _ := cpuSeconds(0)
	err = b.measure(ctx)
	clientCPU1, _ := cpuSeconds(0)
	r.ClientCPUSeconds = clientCPU1 - clientCPU0
	r.LoadAfter = loadAvg()
	if err == nil {
		ok = true
	}
	return r, err
}
