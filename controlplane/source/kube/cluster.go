package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	istionetclient "istio.io/client-go/pkg/clientset/versioned/typed/networking/v1"
	istiosecclient "istio.io/client-go/pkg/clientset/versioned/typed/security/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	discoveryv1client "k8s.io/client-go/kubernetes/typed/discovery/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// State is a cluster's sync state.
type State string

const (
	// StateConnecting: watches started, not every kind listed yet.
	StateConnecting State = "Connecting"
	// StateSynced: every kind listed (or forbidden / not installed) and the API server answers.
	StateSynced State = "Synced"
	// StateUnreachable: the API server stopped answering; its endpoints are
	// kept until the grace period ends.
	StateUnreachable State = "Unreachable"
	// StateDropped: unreachable for longer than the grace period; its
	// endpoints are out of the mesh until it answers again (then it re-lists).
	StateDropped State = "Dropped"
)

// clients are one cluster's REST clients, one per API group read.
type clients struct {
	core, discovery, istioNet, istioSec rest.Interface
	dynamic                             dynamic.Interface
}

func newClients(rc *rest.Config) (*clients, error) {
	core, err := corev1client.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("core client: %w", err)
	}
	disc, err := discoveryv1client.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	inet, err := istionetclient.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("istio networking client: %w", err)
	}
	isec, err := istiosecclient.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("istio security client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	return &clients{core: core.RESTClient(), discovery: disc.RESTClient(), istioNet: inet.RESTClient(), istioSec: isec.RESTClient(), dynamic: dyn}, nil
}

func (cl *clients) restFor(k kind) rest.Interface {
	switch k.Group {
	case "":
		return cl.core
	case "discovery.k8s.io":
		return cl.discovery
	case "networking.istio.io":
		return cl.istioNet
	case "security.istio.io":
		return cl.istioSec
	}
	return nil
}

// watchSet is one generation of a cluster's informers. A cluster that comes
// back after being dropped starts a new one (a fresh list of everything).
type watchSet struct {
	cancel    context.CancelFunc
	informers map[string]cache.SharedIndexInformer // by kind
}

// cluster watches one API server.
type cluster struct {
	ref    clusterRef
	origin string
	log    *zap.Logger
	cl     *clients
	kinds  []kind
	opts   *Options
	notify func()
	// notifyEndpoints is notify for an EndpointSlice or Pod change (a shorter debounce).
	notifyEndpoints func()
	// readConfig: Istio and Rosen config is read from this cluster.
	readConfig bool

	mu      sync.Mutex
	state   State
	since   time.Time
	lastErr string
	synced  bool             // current has listed everything and the cluster was not dropped since: its endpoints count
	current *watchSet        // the watch set whose stores are read
	pending *watchSet        // a watch set still listing (at start, and after a drop)
	kindErr map[string]error // last list/watch error per kind (cleared on success)
	resyncs int

	conv map[any]converted // objects.go; owned by the source's emit goroutine
}

func newCluster(cfg ClusterConfig, readConfig bool, opts *Options, notify, notifyEndpoints func()) (*cluster, error) {
	cl, err := newClients(cfg.REST)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cfg.ID, err)
	}
	var kinds []kind
	for _, k := range watchedKinds {
		if (k.role == roleConfig || k.role == roleModule) && !readConfig {
			continue
		}
		kinds = append(kinds, k)
	}
	opts.metrics.state.WithLabelValues(cfg.ID, string(StateConnecting)).Set(1)
	return &cluster{
		ref: clusterRef{id: cfg.ID}, origin: cfg.Origin, cl: cl, kinds: kinds, opts: opts, notify: notify, notifyEndpoints: notifyEndpoints, readConfig: readConfig,
		log:   opts.Log.Named("cluster").With(zap.String("cluster", cfg.ID)),
		state: StateConnecting, since: time.Now(), kindErr: map[string]error{},
	}, nil
}

// run watches the cluster until ctx ends: it starts the informers, probes
// the API server every opts.Probe, drops the cluster's endpoints after
// opts.Grace without an answer and re-lists everything when it answers again.
func (c *cluster) run(ctx context.Context) {
	c.start(ctx)
	t := time.NewTicker(c.opts.Probe)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.mu.Lock()
			c.stopWatches()
			c.mu.Unlock()
			return
		case <-t.C:
			c.probe(ctx)
		}
	}
}

// start begins a new watch set; the previous one's stores stay readable
// until the new one has listed everything.
func (c *cluster) start(ctx context.Context) {
	wctx, cancel := context.WithCancel(ctx)
	ws := &watchSet{cancel: cancel, informers: map[string]cache.SharedIndexInformer{}}
	for _, k := range c.kinds {
		inf := c.newInformer(k)
		ws.informers[k.Kind] = inf
		go inf.RunWithContext(wctx)
	}
	c.mu.Lock()
	if c.pending != nil {
		c.pending.cancel()
	}
	c.pending = ws
	c.mu.Unlock()
	go c.awaitSync(wctx, ws)
}

// stopWatches stops every informer; their stores stay readable. c.mu must be held.
func (c *cluster) stopWatches() {
	for _, ws := range []*watchSet{c.current, c.pending} {
		if ws != nil {
			ws.cancel()
		}
	}
	c.pending = nil
}

// awaitSync makes ws current once every kind has listed (or cannot be).
func (c *cluster) awaitSync(ctx context.Context, ws *watchSet) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !c.setSynced(ws) {
			continue
		}
		c.mu.Lock()
		if c.pending != ws {
			c.mu.Unlock()
			return // superseded or stopped
		}
		old := c.current
		c.current, c.pending, c.synced = ws, nil, true
		if c.state == StateConnecting {
			c.setState(StateSynced, "")
		}
		c.mu.Unlock()
		if old != nil && old != ws {
			old.cancel()
		}
		c.log.Info("cluster synced")
		c.notify()
		return
	}
}

// setSynced reports whether every informer of ws has listed, counting kinds
// the API server refuses (RBAC) or does not serve (CRD absent) as empty.
func (c *cluster) setSynced(ws *watchSet) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, inf := range ws.informers {
		if inf.HasSynced() {
			continue
		}
		if err := c.kindErr[k]; err != nil && unavailable(err) {
			continue
		}
		return false
	}
	return true
}

// unavailable reports errors that retrying will not fix until an operator acts.
func unavailable(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsUnauthorized(err)
}

func (c *cluster) newInformer(k kind) cache.SharedIndexInformer {
	var lw cache.ListerWatcher
	example := k.example
	if example != nil {
		lw = cache.NewFilteredListWatchFromClient(c.cl.restFor(k), k.Resource, metav1.NamespaceAll, func(o *metav1.ListOptions) {
			o.FieldSelector = k.fieldSelector
		})
	} else {
		res := c.cl.dynamic.Resource(k.GVR())
		lw = &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return res.List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return res.Watch(ctx, o)
			},
		}
		example = &unstructured.Unstructured{}
	}
	inf := cache.NewSharedIndexInformer(&expiryWatcher{lw: cache.ToListerWatcherWithContext(lw), expired: func(err error) { c.watchExpired(k, err) }}, example, 0, cache.Indexers{})
	transform := dropManagedFields
	if k.Kind == "Pod" {
		transform = trimPod
	}
	_ = inf.SetTransform(transform)
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) { c.watchError(k, err) })
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.changed(k) },
		UpdateFunc: func(any, any) { c.changed(k) },
		DeleteFunc: func(any) { c.changed(k) },
	})
	return inf
}

func (c *cluster) changed(k kind) {
	c.mu.Lock()
	delete(c.kindErr, k.Kind)
	c.mu.Unlock()
	c.opts.metrics.events.WithLabelValues(c.ref.id, k.Kind).Inc()
	if k.role == roleEndpoints {
		c.notifyEndpoints()
		return
	}
	c.notify()
}

// watchError records why a kind's list or watch failed. Forbidden and
// not-found kinds are logged once, as an operator must act; other errors
// (a dropped watch, 410 Gone) are retried by the informer.
func (c *cluster) watchError(k kind, err error) {
	c.mu.Lock()
	prev := c.kindErr[k.Kind]
	c.kindErr[k.Kind] = err
	c.mu.Unlock()
	c.opts.metrics.watchErrors.WithLabelValues(c.ref.id, k.Kind).Inc()
	switch {
	case unavailable(err) && (prev == nil || prev.Error() != err.Error()):
		c.log.Warn("cannot read a kind; treating it as empty", zap.String("kind", k.Kind), zap.String("resource", k.GVR().String()), zap.Error(err))
		c.notify() // the cluster may now count as synced
	case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
		c.watchExpired(k, err)
	default:
		c.log.Debug("watch error", zap.String("kind", k.Kind), zap.Error(err))
	}
}

// watchExpired logs a watch the API server ended with 410 Gone (its
// resource version is older than what etcd keeps): the informer re-lists
// the kind and replaces its cache, so nothing changed meanwhile is lost.
func (c *cluster) watchExpired(k kind, err error) {
	c.opts.metrics.expired.WithLabelValues(c.ref.id, k.Kind).Inc()
	c.log.Info("watch expired (410 Gone); re-listing the kind", zap.String("kind", k.Kind), zap.String("resource", k.GVR().String()), zap.Error(err))
}

// probe asks the API server whether it is ready and moves the cluster
// between Synced, Unreachable and Dropped.
func (c *cluster) probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, max(c.opts.Probe, time.Second))
	err := c.cl.core.Get().AbsPath("/readyz").Do(pctx).Error()
	cancel()
	if ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if err == nil {
		switch c.state {
		case StateUnreachable:
			c.log.Info("cluster reachable again", zap.Duration("after", now.Sub(c.since)))
			if c.synced {
				c.setState(StateSynced, "")
			} else {
				c.setState(StateConnecting, "")
			}
			go c.notify()
		case StateDropped:
			c.log.Info("cluster back after being dropped; re-listing everything")
			c.resyncs++
			c.setState(StateConnecting, "")
			go c.start(ctx)
		}
		return
	}
	msg := errors.Unwrap(err)
	if msg == nil {
		msg = err
	}
	switch c.state {
	case StateSynced, StateConnecting:
		c.log.Warn("cluster unreachable; keeping its endpoints for the grace period", zap.Duration("grace", c.opts.Grace), zap.Error(err))
		c.setState(StateUnreachable, msg.Error())
		go c.notify()
	case StateUnreachable:
		c.lastErr = msg.Error()
		if now.Sub(c.since) >= c.opts.Grace {
			c.log.Warn("cluster unreachable past the grace period; dropping its endpoints", zap.Duration("grace", c.opts.Grace))
			c.stopWatches() // stores stay readable; a new watch set re-lists on return
			c.synced = false
			c.setState(StateDropped, msg.Error())
			c.opts.metrics.drops.WithLabelValues(c.ref.id).Inc()
			go c.notify()
		}
	case StateDropped:
		c.lastErr = msg.Error()
	}
}

// setState changes state; c.mu must be held.
func (c *cluster) setState(s State, errMsg string) {
	c.opts.metrics.state.WithLabelValues(c.ref.id, string(c.state)).Set(0)
	c.state, c.since, c.lastErr = s, time.Now(), errMsg
	c.opts.metrics.state.WithLabelValues(c.ref.id, string(s)).Set(1)
}
