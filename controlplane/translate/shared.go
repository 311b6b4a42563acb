package translate

import (
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/proto"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// Shared is the work that translating one mesh for several proxies can
// share. An outbound cluster depends only on its service, port and subset
// and on whether the proxy is proxyless; a load assignment only on its
// service, port and subset. So gateways, sidecars of every namespace and the
// gate's own translations (validate.Mesh, then the xDS server's groups) get
// the same *Cluster and *ClusterLoadAssignment values, built once, and the
// gate checks each value once (Checked). The memo is tied to one mesh (a
// Mesh is never modified once built); used with another, it is ignored.
// Safe for concurrent use. Results are the same with or without it.
type Shared struct {
	mesh *model.Mesh

	hashOnce sync.Once
	hash     [32]byte
	hashErr  error

	mu        sync.Mutex
	clusters  map[sharedCluster]*clusterv3.Cluster
	endpoints map[string]*endpointv3.ClusterLoadAssignment
	checked   map[proto.Message]struct{}
}

type sharedCluster struct {
	proxyless bool
	name      string
}

// NewShared returns an empty memo for translations of m.
func NewShared(m *model.Mesh) *Shared {
	return &Shared{
		mesh:      m,
		clusters:  map[sharedCluster]*clusterv3.Cluster{},
		endpoints: map[string]*endpointv3.ClusterLoadAssignment{},
		checked:   map[proto.Message]struct{}{},
	}
}

// For returns sh if it memoises translations of m, else nil.
func (sh *Shared) For(m *model.Mesh) *Shared {
	if sh == nil || sh.mesh != m {
		return nil
	}
	return sh
}

// StructureHash is model.StructureHash of the memo's mesh, computed once
// for every caller (the runner's gate and the xDS server both need it).
func (sh *Shared) StructureHash() ([32]byte, error) {
	sh.hashOnce.Do(func() { sh.hash, sh.hashErr = model.StructureHash(sh.mesh) })
	return sh.hash, sh.hashErr
}

// Checked reports whether msg, a value this memo handed out, already passed
// the gate.
func (sh *Shared) Checked(msg proto.Message) bool {
	if sh == nil {
		return false
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, ok := sh.checked[msg]
	return ok
}

// MarkChecked records that msg passed the gate.
func (sh *Shared) MarkChecked(msg proto.Message) {
	if sh == nil {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.checked[msg] = struct{}{}
}

// cluster is Cluster(s, port, subset, kind), memoised.
func (sh *Shared) cluster(s *model.Service, port model.ServicePort, subset string, kind ProxyKind) *clusterv3.Cluster {
	if sh == nil {
		return Cluster(s, port, subset, kind)
	}
	k := sharedCluster{kind == Proxyless, ClusterName(s.Host, port.Number, subset)}
	sh.mu.Lock()
	c, ok := sh.clusters[k]
	sh.mu.Unlock()
	if ok {
		return c
	}
	c = Cluster(s, port, subset, kind)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if prev, ok := sh.clusters[k]; ok {
		return prev // built meanwhile by another proxy's translation
	}
	sh.clusters[k] = c
	return c
}

// loadAssignment is LoadAssignment(s, port, subset), memoised.
func (sh *Shared) loadAssignment(s *model.Service, port model.ServicePort, subset string) *endpointv3.ClusterLoadAssignment {
	if sh == nil {
		return LoadAssignment(s, port, subset)
	}
	name := ClusterName(s.Host, port.Number, subset)
	sh.mu.Lock()
	e, ok := sh.endpoints[name]
	sh.mu.Unlock()
	if ok {
		return e
	}
	e = LoadAssignment(s, port, subset)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if prev, ok := sh.endpoints[name]; ok {
		return prev
	}
	sh.endpoints[name] = e
	return e
}
