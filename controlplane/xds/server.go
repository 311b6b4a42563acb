// Package xds serves the translated mesh to Envoy proxies and proxyless gRPC
// clients over go-control-plane: aggregated (ADS) and per-type discovery, in
// state-of-the-world and delta forms. Proxies are grouped by what determines
// their configuration (see classify); each group has one typeCache per
// resource type, so a resource is marshalled once per version and shared by
// every proxy of the group, and streams with the same subscription share one
// interned name set. A change wakes only the streams whose subscription it
// touches. Every mesh passes the validation gate for every group before
// anything is published, and each stream's ACKs and NACKs are recorded for
// /debug/syncz.
package xds

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
)

// Generator produces and checks the resources of one proxy group. MeshGenerator
// is the real one (controlplane/translate and controlplane/validate).
type Generator interface {
	Translate(m *model.Mesh, p translate.Proxy) (*translate.Resources, error)
	Endpoints(m *model.Mesh, clusters []string) []*endpointv3.ClusterLoadAssignment
	// Validate is the gate: nil means the resources may be sent to proxies.
	Validate(r *translate.Resources) error
}

// SharedGenerator is a Generator that can share work between the
// translations of one mesh (translate.Shared); UpdateShared uses it.
type SharedGenerator interface {
	TranslateShared(m *model.Mesh, p translate.Proxy, sh *translate.Shared) (*translate.Resources, error)
	ValidateShared(r *translate.Resources, sh *translate.Shared) error
}

// Options tune the server. The zero value is usable.
type Options struct {
	// Registry receives the server's Prometheus metrics (none when nil).
	Registry prometheus.Registerer
	// MaxResourceNames caps the resource names of one request or one
	// subscription (default 10,000); more is InvalidArgument.
	MaxResourceNames int
	// GroupIdleTimeout drops a proxy group that has had no stream for this
	// long (default 10 minutes; negative keeps groups forever).
	GroupIdleTimeout time.Duration
	// IsolateGroupFailures keeps one proxy group's failure from blocking the
	// others. Set it when the mesh has already passed a gate that checks
	// every declared proxy shape (validate.Mesh, as the runner does): then a
	// group can fail only because of what its proxies claim (a label set
	// that selects two conflicting Gateways, say), and such a proxy must
	// not freeze configuration for the whole mesh. The failing group keeps
	// its last good resources (or gets none) and shows the error in Status;
	// the others move on. Unset, any failing group rejects the whole mesh.
	IsolateGroupFailures bool
	// MaxGroups caps the proxy groups (distinct gateway label sets, sidecar
	// namespaces, proxyless) alive at once (default 1,000). A node that
	// would start one more is refused with ResourceExhausted.
	MaxGroups int
}

// DefaultMaxGroups is Options.MaxGroups when unset.
const DefaultMaxGroups = 1000

func (o Options) maxGroups() int {
	if o.MaxGroups > 0 {
		return o.MaxGroups
	}
	return DefaultMaxGroups
}

// truncateID keeps error messages about hostile node ids short.
func truncateID(id string) string {
	if len(id) > 128 {
		return id[:128] + "…"
	}
	return id
}

// DefaultMaxResourceNames is Options.MaxResourceNames when unset.
const DefaultMaxResourceNames = 10000

// Server is Rosen's xDS server.
type Server struct {
	log     *zap.Logger
	gen     Generator
	opts    Options
	metrics *metrics
	tracker *tracker
	bootID  string
	ctx     context.Context // ends every stream when cancelled (Close)
	cancel  context.CancelFunc
	// streamIDs numbers the streams, for the tracker.
	streamIDs atomic.Int64

	// updateMu serialises Update and the creation of groups.
	updateMu   sync.Mutex
	structHash [32]byte
	nextSerial int

	mu        sync.RWMutex
	groups    map[string]*group
	mesh      *model.Mesh       // last good mesh
	shared    *translate.Shared // translations of mesh shared by groups (UpdateShared), or nil
	version   uint64            // meshes accepted
	configErr error             // why the last mesh was rejected
}

// New creates a server; it serves nothing until the first Update.
func New(log *zap.Logger, gen Generator, opts Options) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	if opts.MaxResourceNames <= 0 {
		opts.MaxResourceNames = DefaultMaxResourceNames
	}
	if opts.GroupIdleTimeout == 0 {
		opts.GroupIdleTimeout = 10 * time.Minute
	}
	log = log.Named("xds")
	m := newMetrics(opts.Registry)
	s := &Server{
		log:     log,
		gen:     gen,
		opts:    opts,
		metrics: m,
		tracker: newTracker(log, m, opts.MaxResourceNames),
		bootID:  bootID(),
		groups:  map[string]*group{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// bootID distinguishes the versions of this process from a previous one's.
func bootID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Close ends every open stream.
func (s *Server) Close() { s.cancel() }

// Ready reports whether a first good mesh has been published.
func (s *Server) Ready() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mesh != nil
}

// ConfigError is why the last mesh given to Update was rejected, or nil.
func (s *Server) ConfigError() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.configErr
}

// Status reports the served configuration and every connected stream.
func (s *Server) Status() Status {
	s.mu.RLock()
	st := Status{
		Ready:       s.mesh != nil,
		Version:     fmt.Sprint(s.version),
		ConfigError: model.AsFieldErrors(s.configErr),
		Groups:      make([]GroupStatus, 0, len(s.groups)),
	}
	groups := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		groups = append(groups, g)
	}
	s.mu.RUnlock()
	sortGroups(groups)
	for _, g := range groups {
		gs := GroupStatus{
			Key: g.key, Kind: g.proxy.Kind, Namespace: g.proxy.Namespace, Labels: g.proxy.Labels,
			Streams: s.tracker.groupStreams(g.key), Resources: map[string]int{},
		}
		for _, t := range servedTypes {
			res, _ := g.snapshot(t)
			gs.Resources[typeName(t)] = len(res)
		}
		if err := g.loadErr(); err != nil {
			gs.Error = err.Error()
		}
		st.Groups = append(st.Groups, gs)
	}
	st.Nodes = s.tracker.nodes()
	return st
}

// groupFor returns the group of a node, creating it (and translating its
// configuration from the current mesh) on its first request.
func (s *Server) groupFor(n *corev3.Node) (*group, error) {
	info, err := classify(n)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s.mu.RLock()
	g := s.groups[info.Group]
	s.mu.RUnlock()
	if g != nil {
		return g, nil
	}
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	s.mu.RLock()
	g, mesh := s.groups[info.Group], s.mesh
	s.mu.RUnlock()
	if g != nil {
		return g, nil
	}
	// Every distinct label set a client claims is a group translated on
	// every change: bound them, so made-up label sets cannot stall the mesh.
	s.mu.RLock()
	count := len(s.groups)
	s.mu.RUnlock()
	if limit := s.opts.maxGroups(); count >= limit {
		s.metrics.groupRefusals.Inc()
		return nil, status.Errorf(codes.ResourceExhausted, "xds: %d proxy groups already (limit %d); node %q would start another", count, limit, truncateID(info.ID))
	}
	s.nextSerial++
	g = newGroup(info.Group, info.Proxy, fmt.Sprintf("%s.%d.", s.bootID, s.nextSerial), time.Now())
	if mesh != nil {
		r, err := s.generate(mesh, g.proxy, s.shared)
		if err != nil {
			g.setErr(err)
			s.log.Error("no configuration for new proxy group", zap.String("group", g.key), zap.Error(err))
		} else {
			if err := g.publish(byType(r)); err != nil {
				g.setErr(err)
				s.log.Error("no configuration for new proxy group", zap.String("group", g.key), zap.Error(err))
			} else {
				g.setRes(r)
			}
		}
	}
	s.mu.Lock()
	s.groups[info.Group] = g
	s.mu.Unlock()
	s.log.Info("proxy group created", zap.String("group", g.key), zap.String("node", info.ID))
	return g, nil
}

// generate translates and validates one group's resources.
func (s *Server) generate(m *model.Mesh, p translate.Proxy, sh *translate.Shared) (r *translate.Resources, err error) {
	defer recoverAsError(&err)
	start := time.Now()
	defer func() { s.metrics.translateDur.WithLabelValues("full").Observe(time.Since(start).Seconds()) }()
	s.metrics.translations.WithLabelValues("full").Inc()
	if sg, ok := s.gen.(SharedGenerator); ok && sh.For(m) != nil {
		if r, err = sg.TranslateShared(m, p, sh); err != nil {
			return nil, err
		}
		if err := sg.ValidateShared(r, sh); err != nil {
			return nil, err
		}
		return r, nil
	}
	r, err = s.gen.Translate(m, p)
	if err != nil {
		return nil, err
	}
	if err := s.gen.Validate(r); err != nil {
		return nil, err
	}
	return r, nil
}

// recoverAsError turns a panic in translation into an error, so that a mesh
// that trips a translator bug is rejected instead of crashing the process.
func recoverAsError(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("xds: translation failed (internal error, please report): %v", p)
	}
}

// ServerOptions are the gRPC server options the xDS port needs: a bounded
// message size, keepalive enforcement, a cap on concurrent streams and the
// codec that sends a shared response body to many streams without copying
// it (other services on the same port are unaffected). Without them the
// server still works, marshalling each response per stream.
func ServerOptions() []grpc.ServerOption {
	return grpcServerOptions()
}
