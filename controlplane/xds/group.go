package xds

import (
	"sort"
	"strconv"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"

	"github.com/rosenmesh/rosen/controlplane/translate"
)

// group is the configuration shared by every proxy whose node says the same
// thing about it (see classify). It holds one LinearCache per resource type:
// a resource is marshalled once per version and its bytes are shared by all
// the watches that receive it.
type group struct {
	key     string
	proxy   translate.Proxy
	prefix  string
	created time.Time
	caches  map[string]*cachev3.LinearCache

	mu       sync.Mutex
	res      *translate.Resources                 // last published (good) resources
	err      error                                // why this group has no resources, if so
	current  map[string]map[string]types.Resource // type URL → name → what the cache holds
	versions map[string]uint64                    // mirror of each LinearCache's version
}

func newGroup(key string, p translate.Proxy, prefix string, now time.Time) *group {
	g := &group{
		key:      key,
		proxy:    p,
		prefix:   prefix,
		created:  now,
		caches:   make(map[string]*cachev3.LinearCache, len(servedTypes)),
		current:  make(map[string]map[string]types.Resource, len(servedTypes)),
		versions: make(map[string]uint64, len(servedTypes)),
	}
	for _, t := range servedTypes {
		g.caches[t] = cachev3.NewLinearCache(t, cachev3.WithVersionPrefix(prefix))
		g.current[t] = map[string]types.Resource{}
	}
	return g
}

// publish hands the caches the resources of the given types (all when types
// is empty) that differ from what they hold, and deletes the ones that are
// gone. Unchanged resources keep their cached bytes and are not re-sent. It
// returns the number of resources changed or deleted per type URL.
func (g *group) publish(want map[string]map[string]types.Resource, typeURLs ...string) map[string]int {
	if len(typeURLs) == 0 {
		typeURLs = servedTypes
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	changes := map[string]int{}
	for _, t := range typeURLs {
		have := g.current[t]
		next := want[t]
		changed := map[string]types.Resource{}
		for name, res := range next {
			if old, ok := have[name]; !ok || !proto.Equal(old, res) {
				changed[name] = res
			}
		}
		var deleted []string
		for name := range have {
			if _, ok := next[name]; !ok {
				deleted = append(deleted, name)
			}
		}
		if len(changed) == 0 && len(deleted) == 0 {
			continue
		}
		// UpdateResources only fails when notifying a watch fails to compute
		// a version, which cannot happen for well-formed protos; the cache
		// state is updated before notification either way.
		_ = g.caches[t].UpdateResources(changed, deleted)
		g.versions[t]++
		for name, res := range changed {
			have[name] = res
		}
		for _, name := range deleted {
			delete(have, name)
		}
		changes[t] = len(changed) + len(deleted)
	}
	return changes
}

// snapshot returns the resources of one type the cache holds, and its version.
func (g *group) snapshot(typeURL string) (map[string]types.Resource, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]types.Resource, len(g.current[typeURL]))
	for k, v := range g.current[typeURL] {
		out[k] = v
	}
	return out, g.prefix + strconv.FormatUint(g.versions[typeURL], 10)
}

// edsClusters lists the names under which the group's EDS clusters ask for
// endpoints (eds_cluster_config.service_name, else the cluster name).
func edsClusters(r *translate.Resources) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, c := range r.Clusters {
		if c.GetType() != clusterv3.Cluster_EDS {
			continue
		}
		name := c.GetEdsClusterConfig().GetServiceName()
		if name == "" {
			name = c.GetName()
		}
		out = append(out, name)
	}
	return out
}

// withEndpoints is a copy of r whose endpoints are eps.
func withEndpoints(r *translate.Resources, eps []*endpointv3.ClusterLoadAssignment) *translate.Resources {
	c := *r
	c.Endpoints = eps
	return &c
}

func (g *group) setRes(r *translate.Resources) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.res, g.err = r, nil
}

func (g *group) setErr(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.err = err
}

func (g *group) loadErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

func (g *group) resources() *translate.Resources {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.res
}

func sortGroups(gs []*group) {
	sort.Slice(gs, func(i, j int) bool { return gs[i].key < gs[j].key })
}
