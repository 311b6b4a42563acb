// Package kube is the Kubernetes configuration source: client-go informers
// on one or more clusters turn Services, EndpointSlices, Pods, TLS Secrets,
// Namespaces, Istio's networking and security kinds and Rosen's own kinds
// into the same config.Set the file source produces, so istio.Build serves
// both. Every cluster's endpoints join one mesh with the cluster's id on
// each endpoint; config is read from the primary (the first cluster) or from
// all. A cluster whose API server stops answering keeps its endpoints for a
// grace period, then drops them, and re-lists everything when it answers
// again, without a restart.
package kube

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// Config modes: which clusters Istio and Rosen config is read from.
const (
	ConfigFromPrimary = "primary"
	ConfigFromAll     = "all"
)

// Defaults.
const (
	DefaultGrace    = 30 * time.Second
	DefaultProbe    = 2 * time.Second
	DefaultDebounce = 100 * time.Millisecond // Istio's PILOT_DEBOUNCE_AFTER
	// DefaultEndpointDebounce is the quiet time of a burst of only
	// EndpointSlice and Pod changes: the endpoint path is cheap (the runner
	// rebuilds only the affected services' endpoints), so it waits just long
	// enough to coalesce a rollout's slice updates.
	DefaultEndpointDebounce = 10 * time.Millisecond
	DefaultMaxDelay         = time.Second
	DefaultInitialSync      = 15 * time.Second
)

// Options configure the source.
type Options struct {
	Clusters []ClusterConfig
	// ConfigFrom is ConfigFromPrimary (default) or ConfigFromAll.
	ConfigFrom string
	// Grace is how long an unreachable cluster keeps its endpoints.
	Grace time.Duration
	// Probe is how often each API server's /readyz is asked.
	Probe time.Duration
	// Debounce is the quiet time after a change before the set is rebuilt,
	// MaxDelay the longest a constant stream of changes may delay it.
	Debounce, MaxDelay time.Duration
	// EndpointDebounce is the quiet time while every change since the last
	// set is an EndpointSlice or Pod (at most Debounce); one other change in
	// the burst makes it Debounce.
	EndpointDebounce time.Duration
	// InitialSync is how long the first set waits for every cluster; clusters
	// not synced by then join when they are.
	InitialSync time.Duration
	// NamespaceSelector, when set, admits only objects in namespaces whose
	// labels match (Istio's discoverySelectors).
	NamespaceSelector labels.Selector
	// RemoteSecretNamespace, when set, adds the clusters whose kubeconfigs
	// are held in Secrets of that namespace of the primary cluster, labelled
	// istio/multiCluster=true (Istio's remote secrets; remote.go).
	RemoteSecretNamespace string
	Log                   *zap.Logger
	Registry              prometheus.Registerer

	metrics *metrics
}

// Source watches the clusters.
type Source struct {
	opts Options
	log  *zap.Logger
	wake chan struct{}
	// configDirty: a change since the last set was not an EndpointSlice or
	// Pod (or was a cluster's state), so the full Debounce applies.
	configDirty atomic.Bool

	cmu      sync.Mutex
	clusters []*cluster                // the --kubeconfig clusters, then remote ones
	remote   map[string]*remoteCluster // remote.go, by cluster id

	mu       sync.Mutex
	rejected []*model.FieldError
	// Module kinds (modules.go): the registered handlers, what each was
	// last handed, and the objects it refused.
	handlers       map[string]ModuleHandler
	delivered      map[string][]ModuleObject
	moduleRejected map[string][]*model.FieldError
	// statusPoke wakes the status writer (statuswriter.go) when what the
	// modules refuse changes, which the runner's report does not carry.
	statusPoke func()
	counts     map[string]map[string]int // cluster → kind → objects in the last set
	lastSet    time.Time
}

// New checks the options and builds the clients; nothing is contacted until Run.
func New(opts Options) (*Source, error) {
	if len(opts.Clusters) == 0 {
		return nil, ErrNoClusters
	}
	if opts.ConfigFrom == "" {
		opts.ConfigFrom = ConfigFromPrimary
	}
	if opts.ConfigFrom != ConfigFromPrimary && opts.ConfigFrom != ConfigFromAll {
		return nil, fmt.Errorf("%w %q (want %s or %s)", ErrUnknownConfigMode, opts.ConfigFrom, ConfigFromPrimary, ConfigFromAll)
	}
	opts.Grace = orDefault(opts.Grace, DefaultGrace)
	opts.Probe = orDefault(opts.Probe, DefaultProbe)
	opts.Debounce = orDefault(opts.Debounce, DefaultDebounce)
	opts.MaxDelay = max(orDefault(opts.MaxDelay, DefaultMaxDelay), opts.Debounce)
	opts.EndpointDebounce = min(orDefault(opts.EndpointDebounce, DefaultEndpointDebounce), opts.Debounce)
	opts.InitialSync = orDefault(opts.InitialSync, DefaultInitialSync)
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	opts.Log = opts.Log.Named("kube")
	routeKlog(opts.Log)
	opts.metrics = newMetrics(opts.Registry)
	s := &Source{opts: opts, log: opts.Log, wake: make(chan struct{}, 1), counts: map[string]map[string]int{}, remote: map[string]*remoteCluster{}}
	for i, cfg := range opts.Clusters {
		readConfig := i == 0 || opts.ConfigFrom == ConfigFromAll
		c, err := newCluster(cfg, readConfig, &s.opts, s.poke, s.pokeEndpoints)
		if err != nil {
			return nil, err
		}
		s.clusters = append(s.clusters, c)
	}
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// poke asks for a rebuild after a change of config or cluster state (never blocks).
func (s *Source) poke() {
	s.configDirty.Store(true)
	s.pokeEndpoints()
}

// pokeEndpoints asks for a rebuild after an EndpointSlice or Pod change.
func (s *Source) pokeEndpoints() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run watches every cluster and calls onChange with the merged set: once
// every cluster has synced (or InitialSync has passed), then after each
// debounced burst of changes. It returns when ctx ends.
func (s *Source) Run(ctx context.Context, onChange func(*config.Set, error)) error {
	var wg sync.WaitGroup
	for _, c := range s.list() {
		wg.Add(1)
		go func() { defer wg.Done(); c.run(ctx) }()
	}
	defer wg.Wait()
	if s.opts.RemoteSecretNamespace != "" {
		s.watchRemoteSecrets(ctx, &wg)
	}

	if !s.awaitInitial(ctx) {
		return nil
	}
	s.configDirty.Store(false)
	s.emit(onChange)
	var timer *time.Timer
	var fire <-chan time.Time
	var first time.Time
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case <-s.wake:
			now := time.Now()
			if fire == nil {
				first = now
			}
			quiet := s.opts.EndpointDebounce
			if s.configDirty.Load() {
				quiet = s.opts.Debounce
			}
			wait := min(quiet, max(s.opts.MaxDelay-now.Sub(first), 0))
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Stop()
				timer.Reset(wait)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			s.configDirty.Store(false)
			s.emit(onChange)
		}
	}
}

// awaitInitial waits until every cluster synced or InitialSync passed; false when ctx ended.
func (s *Source) awaitInitial(ctx context.Context) bool {
	deadline := time.NewTimer(s.opts.InitialSync)
	defer deadline.Stop()
	for {
		waiting := 0
		for _, c := range s.list() {
			c.mu.Lock()
			if !c.synced {
				waiting++
			}
			c.mu.Unlock()
		}
		if waiting == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			s.log.Warn("not every cluster synced in time; serving the ones that did", zap.Int("waiting", waiting), zap.Duration("after", s.opts.InitialSync))
			return true
		case <-s.wake:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Source) emit(onChange func(*config.Set, error)) {
	start := time.Now()
	clusters := s.list()
	snaps := make([]snapshot, len(clusters))
	counts := map[string]map[string]int{}
	for i, c := range clusters {
		snaps[i] = c.snapshot(s.opts.NamespaceSelector)
		counts[c.ref.id] = snaps[i].counts
	}
	set, rejected := merge(snaps)
	s.deliverModules(snaps)
	s.mu.Lock()
	s.rejected, s.counts, s.lastSet = rejected, counts, time.Now()
	s.mu.Unlock()
	s.opts.metrics.assemble.Observe(time.Since(start).Seconds())
	s.log.Debug("set assembled", zap.Int("objects", len(set.Objects)), zap.Int("rejected", len(rejected)), zap.Duration("took", time.Since(start)))
	onChange(set, nil)
}

// list returns the clusters, primary first.
func (s *Source) list() []*cluster {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return append([]*cluster(nil), s.clusters...)
}

// Rejected lists the objects the source could not convert (e.g. a Rosen
// RateLimitPolicy that fails its checks; they are left out of the set) and
// the module kinds' objects their modules refused.
func (s *Source) Rejected() []*model.FieldError {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]*model.FieldError(nil), s.rejected...)
	kinds := make([]string, 0, len(s.moduleRejected))
	for k := range s.moduleRejected {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		out = append(out, s.moduleRejected[k]...)
	}
	return out
}
