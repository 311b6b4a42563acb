package xds

import (
	"bytes"
	"sort"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/rosenmesh/rosen/controlplane/translate"
)

// group is the configuration shared by every proxy whose node says the same
// thing about it (see classify). It holds one typeCache per resource type: a
// resource is marshalled once per version and its bytes are shared by all
// the streams that receive it.
type group struct {
	key     string
	proxy   translate.Proxy
	prefix  string
	created time.Time

	// mu guards everything below and the typeCaches, their watches and
	// subscriptions.
	mu    sync.Mutex
	types map[string]*typeCache
	res   *translate.Resources // last published (good) resources
	err   error                // why this group has no resources, if so
	// published: a good configuration was committed. Until then nothing is
	// answered: an empty answer would make a proxy that reconnects to a
	// server started on a bad config (or whose group failed to translate)
	// drop every listener and cluster it holds.
	published bool
}

func newGroup(key string, p translate.Proxy, prefix string, now time.Time) *group {
	g := &group{
		key:     key,
		proxy:   p,
		prefix:  prefix,
		created: now,
		types:   make(map[string]*typeCache, len(servedTypes)),
	}
	for _, t := range servedTypes {
		g.types[t] = newTypeCache(t, prefix)
	}
	return g
}

// pending is one group's next version: per type URL, the resources that
// changed (already marshalled) and the names deleted.
type pending map[string]typeDiff

type typeDiff struct {
	changed []*entry
	deleted []string
}

// prepare compares the resources of the given types (all when types is
// empty) with what the group holds and marshals, once, those that differ.
// Unchanged resources keep their bytes and are not re-sent. It runs under
// the server's updateMu, the only writer of the entries, so it reads them
// without the group's lock and streams are not held up.
func (g *group) prepare(want map[string]map[string]types.Resource, memo marshalMemo, typeURLs ...string) (pending, error) {
	if len(typeURLs) == 0 {
		typeURLs = servedTypes
	}
	p := make(pending, len(typeURLs))
	for _, t := range typeURLs {
		tc := g.types[t]
		var d typeDiff
		for name, res := range want[t] {
			old, ok := tc.entries[name]
			if ok && old.res == res {
				continue
			}
			// Compared as deterministic bytes, which a changed resource
			// needs anyway: several times cheaper than proto.Equal's
			// reflection over thousands of unchanged clusters.
			b, err := memo.marshal(t, name, res)
			if err != nil {
				return nil, err
			}
			if ok && bytes.Equal(old.any.GetValue(), b) {
				continue
			}
			d.changed = append(d.changed, entryOf(t, name, res, b))
		}
		for name := range tc.entries {
			if _, ok := want[t][name]; !ok {
				d.deleted = append(d.deleted, name)
			}
		}
		if len(d.changed) > 0 || len(d.deleted) > 0 {
			p[t] = d
		}
	}
	return p, nil
}

// commit installs a prepared version and wakes the streams it concerns. It
// returns the number of resources changed or deleted per type URL.
func (g *group) commit(p pending) map[string]int {
	changes := make(map[string]int, len(p))
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, t := range servedTypes {
		if d, ok := p[t]; ok {
			g.types[t].apply(d.changed, d.deleted)
			changes[t] = len(d.changed) + len(d.deleted)
		}
	}
	if !g.published {
		// The first configuration: every parked watch is due, also of the
		// types that have no resource (an empty CDS answer is one too).
		g.published = true
		for _, tc := range g.types {
			for w := range tc.watches {
				w.s.wake()
			}
		}
	}
	return changes
}

// publish prepares and commits in one step (a group's first resources).
func (g *group) publish(want map[string]map[string]types.Resource) error {
	p, err := g.prepare(want, nil)
	if err != nil {
		return err
	}
	g.commit(p)
	return nil
}

// snapshot returns the resources of one type the group holds, and its version.
func (g *group) snapshot(typeURL string) (map[string]types.Resource, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	tc := g.types[typeURL]
	out := make(map[string]types.Resource, len(tc.entries))
	for k, e := range tc.entries {
		out[k] = e.res
	}
	return out, tc.versionString(tc.version)
}

// reuseEndpoints compares eps with the assignments the group serves: it
// returns eps with every unchanged assignment replaced by the one served
// (so publishing finds it identical by pointer, at no cost), and the ones
// that changed. Called under the server's updateMu, like prepare.
func (g *group) reuseEndpoints(eps []*endpointv3.ClusterLoadAssignment) (all, changed []*endpointv3.ClusterLoadAssignment) {
	have := g.types[resourcev3.EndpointType].entries
	all = make([]*endpointv3.ClusterLoadAssignment, len(eps))
	for i, e := range eps {
		all[i] = e
		old, ok := have[e.GetClusterName()]
		if !ok || !proto.Equal(old.res, e) {
			changed = append(changed, e)
		} else if o, isCLA := old.res.(*endpointv3.ClusterLoadAssignment); isCLA {
			all[i] = o
		}
	}
	return all, changed
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
