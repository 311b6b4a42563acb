package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/controlplane/source/kube"
	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/cqrs/service"
	"github.com/rosenmesh/rosen/cqrs/source"
)

// startWithKube runs the CQRS engine with the rules of its files plus the
// CQRSRules of the clusters. Each CQRSRule is checked like a rule of a file
// against the files' databases and exporters; one that fails is left out
// (its status and an Event say which field) and the others apply. When the
// accepted rules change, the engine is reopened with them: its consumers
// are durable, so it resumes where it stopped.
func (f *cqrsFlags) startWithKube(ctx context.Context, env *moduleEnv) (func(context.Context) error, error) {
	log := env.Log.Named("cqrs")
	if !f.enabled() {
		log.Info("no --cqrs-dir or --cqrs-rules: the CQRS engine is off; CQRSRules in the clusters are refused")
		return nil, env.Kube.HandleModuleKind(kube.KindCQRSRule, func(objs []kube.ModuleObject) []kube.Refusal {
			out := make([]kube.Refusal, len(objs))
			for i := range objs {
				out[i] = kube.Refusal{Index: i, Message: "the CQRS engine of this Rosen is off (start rosen serve with --cqrs-dir: it holds the databases rules write to)"}
			}
			return out
		})
	}
	files, err := f.files()
	if err != nil {
		return nil, err // serve prefixes the module name
	}
	base, err := rules.Load(files)
	if err != nil {
		return nil, err // serve prefixes the module name
	}
	ck := &cqrsKube{f: f, env: env, log: log, base: base, want: make(chan *rules.Config, 1)}
	if err := env.Kube.HandleModuleKind(kube.KindCQRSRule, ck.handle); err != nil {
		return nil, err
	}
	first, err := ck.open(ctx, base)
	if err != nil {
		return nil, err // serve prefixes the module name
	}
	env.HTTP.Mount("/api/cqrs", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur := ck.cur.Load()
		if cur == nil {
			http.Error(w, "the CQRS engine is reopening with changed rules; retry", http.StatusServiceUnavailable)
			return
		}
		cur.h.ServeHTTP(w, r)
	}))
	return func(ctx context.Context) error { return ck.run(ctx, first) }, nil
}

type cqrsKube struct {
	f    *cqrsFlags
	env  *moduleEnv
	log  *zap.Logger
	base *rules.Config
	want chan *rules.Config // the latest accepted rule set, written by handle only

	cur      atomic.Pointer[cqrsServing]
	accepted string // handle's last accepted objects, to reopen only on a change
}

type cqrsServing struct {
	svc *service.Service
	h   http.Handler
}

func (ck *cqrsKube) open(ctx context.Context, cfg *rules.Config) (*service.Service, error) {
	f := ck.f
	return service.Open(ctx, service.Options{
		Config: cfg, DataDir: ck.env.DataDir, Sources: f.sources, Worker: f.worker, Workers: f.workers, BatchSize: f.batch, Linger: f.linger,
		Log: ck.env.Log, Registry: ck.env.Registry,
		JetStream: source.JetStreamConfig{URL: f.natsURL, Listen: f.natsListen, Stream: f.stream, Subject: f.subject, Partitions: f.partitions},
	})
}

// handle checks the clusters' CQRSRules (on the Kubernetes source's
// goroutine) and passes a changed rule set to run.
func (ck *cqrsKube) handle(objs []kube.ModuleObject) []kube.Refusal {
	ros := make([]rules.RuleObject, len(objs))
	for i, o := range objs {
		ros[i] = rules.RuleObject{Where: o.Where(), Spec: o.Spec}
	}
	cfg, errs := ck.base.WithRules(ros)
	var refusals []kube.Refusal
	var key strings.Builder
	for i, err := range errs {
		if err == nil {
			fmt.Fprintf(&key, "%s\x00%s\x00", ros[i].Where, ros[i].Spec)
			continue
		}
		r := kube.Refusal{Index: i, Message: err.Error()}
		var ce *rules.ConfigError
		if errors.As(err, &ce) {
			r.Field, r.Message = ce.Path, ce.Err.Error()
		}
		refusals = append(refusals, r)
	}
	if key.String() != ck.accepted {
		ck.accepted = key.String()
		select {
		case <-ck.want: // replaced by the newer set
		default:
		}
		ck.want <- cfg
	}
	return refusals
}

// run serves with svc and reopens the engine whenever the rule set changes.
func (ck *cqrsKube) run(ctx context.Context, svc *service.Service) error {
	for {
		ck.cur.Store(&cqrsServing{svc: svc, h: svc.Handler()})
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(runCtx) }()
		var next *rules.Config
		select {
		case <-ctx.Done():
		case next = <-ck.want:
		case err := <-done:
			cancel()
			ck.cur.Store(nil)
			svc.Close()
			return err
		}
		cancel()
		<-done
		ck.cur.Store(nil)
		svc.Close()
		if next == nil {
			return nil
		}
		var err error
		if svc, err = ck.open(ctx, next); err != nil {
			ck.log.Error("cannot open the CQRS engine with the clusters' rules; serving the files' rules only", zap.Error(err))
			if svc, err = ck.open(ctx, ck.base); err != nil {
				return fmt.Errorf("cqrs: %w", err)
			}
			continue
		}
		ck.log.Info("CQRS engine reopened with changed rules", zap.Int("rules", len(next.Rules)), zap.Int("fromFiles", len(ck.base.Rules)))
	}
}
