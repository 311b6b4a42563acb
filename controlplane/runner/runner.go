// Package runner joins the control plane's stages: a config source produces
// object sets; each set is built into the model, checked by the validation
// gate and handed to the xDS server. A set that fails anywhere is rejected
// whole: the error is recorded (with file, resource and field) and the last
// good configuration keeps being served.
package runner

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
	"github.com/rosenmesh/rosen/controlplane/validate"
	"github.com/rosenmesh/rosen/controlplane/xds"
)

// Source produces configuration sets: once at start and after every change.
type Source interface {
	Run(ctx context.Context, onChange func(*config.Set, error)) error
}

// Publisher serves a model to proxies (the xDS server). Update returns an
// error when the model is rejected; the previous one stays in force.
type Publisher interface {
	Update(m *model.Mesh) error
	Ready() bool
	Status() xds.Status
}

// SharedPublisher is a Publisher that can reuse the gate's translations of
// a mesh (xds.Server does).
type SharedPublisher interface {
	UpdateShared(m *model.Mesh, sh *translate.Shared) error
}

var _ SharedPublisher = (*xds.Server)(nil)

// Runner owns the pipeline and the record of the last rejection.
type Runner struct {
	// observers are called with each published mesh (OnAccepted).
	observers []func(*model.Mesh)
	log       *zap.Logger
	src       Source
	pub       Publisher
	metrics   *metrics

	// applyMu serialises apply; lastStruct is the model.StructureHash of
	// the last mesh the publisher accepted (valid when hasLast).
	applyMu    sync.Mutex
	lastStruct [32]byte
	hasLast    bool
	accepted   *accepted // endpointpath.go: the last published set and mesh

	mu        sync.Mutex
	isolation *Isolation      // isolate.go
	leftOut   map[string]bool // isolate.go: problems of the objects left out by the last build
	lastErr   error
	lastApply time.Time
	applied   int
	rejected  int
}

type metrics struct {
	applies      *prometheus.CounterVec
	build        prometheus.Histogram
	translations *prometheus.CounterVec
}

// Gate modes, the values of rosen_config_translations_total's mode label.
const (
	// ModeFull translates and validates every proxy kind (validate.Mesh).
	ModeFull = "full"
	// ModeEndpoints builds and validates only the load assignments
	// (validate.MeshEndpoints): the change touched nothing but endpoints.
	ModeEndpoints = "endpoints"
	// ModeIncremental skips the build too: only EndpointSlices or Pods
	// changed, so only their services' endpoints are rebuilt on the last
	// published mesh and only their load assignments are built, validated
	// and published (endpointpath.go).
	ModeIncremental = "incremental"
)

// New creates a runner. reg may be nil.
func New(log *zap.Logger, src Source, pub Publisher, reg prometheus.Registerer) *Runner {
	m := &metrics{
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rosen_config_applies_total",
			Help: "Configuration changes seen, by result (accepted or rejected).",
		}, []string{"result"}),
		build: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rosen_config_build_seconds",
			Help:    "Time to build and validate the model from a configuration set.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		translations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rosen_config_translations_total",
			Help: "Translations run by the validation gate, by mode: full (every proxy kind, routes included), endpoints (every load assignment) or incremental (the load assignments of the services whose EndpointSlices or Pods changed).",
		}, []string{"mode"}),
	}
	for _, mode := range []string{ModeFull, ModeEndpoints, ModeIncremental} {
		m.translations.WithLabelValues(mode)
	}
	if reg != nil {
		reg.MustRegister(m.applies, m.build, m.translations)
	}
	return &Runner{log: log.Named("runner"), src: src, pub: pub, metrics: m}
}

// Run blocks until ctx is done or the source fails.
func (r *Runner) Run(ctx context.Context) error {
	return r.src.Run(ctx, r.Apply)
}

// Apply handles one configuration set (or the error that replaced it).
func (r *Runner) Apply(set *config.Set, err error) {
	start := time.Now()
	mode := ""
	if err == nil {
		mode, err = r.apply(set)
	}
	r.metrics.build.Observe(time.Since(start).Seconds())
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastApply = time.Now()
	r.lastErr = err
	if err != nil {
		r.rejected++
		r.metrics.applies.WithLabelValues("rejected").Inc()
		for _, fe := range model.AsFieldErrors(err) {
			fields := []zap.Field{zap.String("file", fe.Source.File)}
			if fe.Source.Name != "" { // a file that does not parse names no resource
				fields = append(fields, zap.String("kind", fe.Source.Kind),
					zap.String("resource", fe.Source.Namespace+"/"+fe.Source.Name))
			}
			if fe.Field != "" {
				fields = append(fields, zap.String("field", fe.Field))
			}
			msg := "configuration rejected; the last good configuration stays in force"
			if !r.pub.Ready() {
				msg = "configuration rejected; there is no good configuration yet, so proxies get no answer until one is accepted"
			}
			r.log.Error(msg, append(fields, zap.String("error", fe.Message))...)
		}
		return
	}
	r.applied++
	r.metrics.applies.WithLabelValues("accepted").Inc()
	r.log.Info("configuration applied", zap.Int("objects", len(set.Objects)), zap.String("gate", mode),
		zap.Duration("took", time.Since(start)))
}

// apply builds the mesh, gates it and publishes it. When the mesh differs
// from the last published one only in EDS endpoints (same
// model.StructureHash), listeners, routes and clusters are known to
// translate exactly as before and to have passed the gate, so only the new
// load assignments are built and checked.
func (r *Runner) apply(set *config.Set) (mode string, err error) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	if handled, err := r.applyEndpoints(set); handled {
		return ModeIncremental, set.Locate(err)
	}
	mesh, err := r.build(set) // isolate.go
	if err != nil {
		return "", set.Locate(err)
	}
	// The gate's translations and the mesh's hash are shared with the
	// publisher: the xDS server's groups reuse what the gate built and
	// checked, and the hash is computed once.
	sh := translate.NewShared(mesh)
	hash, hashErr := sh.StructureHash()
	if hashErr != nil {
		r.log.Warn("cannot hash the mesh; validating all of it", zap.Error(hashErr))
	}
	mode = ModeFull
	if hashErr == nil && r.hasLast && hash == r.lastStruct {
		mode = ModeEndpoints
	}
	r.metrics.translations.WithLabelValues(mode).Inc()
	if mode == ModeEndpoints {
		err = validate.MeshEndpoints(mesh)
	} else {
		err = validate.MeshShared(mesh, sh)
	}
	if err != nil {
		return mode, err
	}
	if sp, ok := r.pub.(SharedPublisher); ok {
		err = sp.UpdateShared(mesh, sh)
	} else {
		err = r.pub.Update(mesh)
	}
	if err != nil {
		return mode, err
	}
	r.lastStruct, r.hasLast = hash, hashErr == nil
	r.published(set, mesh)
	return mode, nil
}

// published records set and mesh as the baseline of the endpoint path and
// hands mesh to the observers. Called with applyMu held.
func (r *Runner) published(set *config.Set, mesh *model.Mesh) {
	r.accepted = newAccepted(set, mesh)
	for _, f := range r.observers {
		f(mesh)
	}
}

// OnAccepted registers f to be called with every mesh that is published,
// in order, after the proxies' config has moved to it. Modules that read the
// mesh (ext_authz's JWT providers, say) follow the one config path this way
// instead of re-reading the sources. f must not block for long. Register
// before Run.
func (r *Runner) OnAccepted(f func(*model.Mesh)) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	r.observers = append(r.observers, f)
}

// Ready reports whether a good configuration is being served.
func (r *Runner) Ready() bool { return r.pub.Ready() }

// ConfigErrors lists why the latest configuration was rejected.
func (r *Runner) ConfigErrors() []*model.FieldError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return model.AsFieldErrors(r.lastErr)
}

// Syncz is the /debug/syncz document: the xDS server's per-node status plus
// the configuration pipeline's own state.
func (r *Runner) Syncz() any {
	r.mu.Lock()
	errs := model.AsFieldErrors(r.lastErr)
	if errs == nil {
		errs = []*model.FieldError{}
	}
	doc := map[string]any{
		"config": map[string]any{
			"accepted":  r.applied,
			"rejected":  r.rejected,
			"lastApply": r.lastApply,
			"errors":    errs,
		},
	}
	r.mu.Unlock()
	doc["xds"] = r.pub.Status()
	return doc
}
