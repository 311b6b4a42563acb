package main

import (
	"hash/maphash"
	"slices"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// The load client keeps per-stream state small by interning: every distinct
// resource (name + bytes) is parsed once for the whole fleet, and every
// distinct set of resources a stream holds is one shared immutable value.
// Since all proxies of one kind receive the same configuration, a stream's
// state is a handful of pointers, not thousands of map entries.

// resInfo is what the client needs from one resource.
type resInfo struct {
	refs  []string // LDS: RDS route config names; CDS: the EDS service name
	addrs []string // EDS: endpoint addresses; RDS: virtual host domains
	bad   bool     // the bytes did not parse (counted, never NACKed)
}

type item struct {
	hash uint64
	info *resInfo
}

// rset is an immutable set of named resources of one type.
type rset struct {
	id    uint64 // XOR of item hashes: equal sets have equal ids
	items map[string]item
	refs  *nameList // sorted union of items' refs (LDS → RDS names, CDS → EDS names)
	// covers memoises whether the set holds every name of a subscription.
	mu     sync.Mutex
	covers map[uint64]bool
}

// nameList is an immutable sorted list of resource names.
type nameList struct {
	id    uint64
	names []string
}

var emptyNames = &nameList{}

// update is one resource received in a response.
type update struct {
	name  string
	bytes []byte
}

// interner is shared by every stream of one run.
type interner struct {
	seed  maphash.Seed
	mu    sync.Mutex
	infos map[uint64]*resInfo
	sets  map[uint64]*rset
	lists map[uint64]*nameList
	empty *rset
}

func newInterner() *interner {
	in := &interner{
		seed:  maphash.MakeSeed(),
		infos: map[uint64]*resInfo{},
		sets:  map[uint64]*rset{},
		lists: map[uint64]*nameList{},
	}
	in.empty = &rset{items: map[string]item{}, refs: emptyNames, covers: map[uint64]bool{}}
	in.sets[0] = in.empty
	return in
}

func (in *interner) itemHash(name string, b []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(in.seed)
	_, _ = h.WriteString(name)
	_ = h.WriteByte(0)
	_, _ = h.Write(b)
	return h.Sum64()
}

// apply returns the set that results from old after a response: replace
// (state-of-the-world LDS/CDS) drops everything not in ups; otherwise ups
// are upserted and removed names deleted.
func (in *interner) apply(typeURL string, old *rset, replace bool, ups []update, removed []string) *rset {
	hashes := make([]uint64, len(ups))
	var id uint64
	if !replace {
		id = old.id
	}
	for i, u := range ups {
		hashes[i] = in.itemHash(u.name, u.bytes)
		if !replace {
			if it, ok := old.items[u.name]; ok {
				id ^= it.hash
			}
		}
		id ^= hashes[i]
	}
	if !replace {
		for _, n := range removed {
			if it, ok := old.items[n]; ok {
				id ^= it.hash
			}
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if s, ok := in.sets[id]; ok {
		return s
	}
	var items map[string]item
	if replace {
		items = make(map[string]item, len(ups))
	} else {
		items = make(map[string]item, len(old.items)+len(ups))
		for k, v := range old.items {
			items[k] = v
		}
		for _, n := range removed {
			delete(items, n)
		}
	}
	for i, u := range ups {
		info, ok := in.infos[hashes[i]]
		if !ok {
			info = parseInfo(typeURL, u.bytes)
			in.infos[hashes[i]] = info
		}
		items[u.name] = item{hash: hashes[i], info: info}
	}
	s := &rset{id: id, items: items, covers: map[uint64]bool{}}
	var refs []string
	for _, it := range items {
		refs = append(refs, it.info.refs...)
	}
	s.refs = in.internNames(refs)
	in.sets[id] = s
	return s
}

// internNames returns the shared sorted, de-duplicated list of names.
// Callers hold in.mu.
func (in *interner) internNames(names []string) *nameList {
	if len(names) == 0 {
		return emptyNames
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var h maphash.Hash
	h.SetSeed(in.seed)
	for _, n := range names {
		_, _ = h.WriteString(n)
		_ = h.WriteByte(0)
	}
	id := h.Sum64()
	if l, ok := in.lists[id]; ok {
		return l
	}
	l := &nameList{id: id, names: slices.Clip(names)}
	in.lists[id] = l
	return l
}

// has reports whether the set holds every name of the list.
func (s *rset) has(l *nameList) bool {
	if len(l.names) == 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.covers[l.id]; ok {
		return v
	}
	v := true
	for _, n := range l.names {
		if _, ok := s.items[n]; !ok {
			v = false
			break
		}
	}
	s.covers[l.id] = v
	return v
}

// diff returns the names in next but not in prev, and in prev but not next.
func diff(prev, next *nameList) (added, removed []string) {
	i, j := 0, 0
	for i < len(prev.names) || j < len(next.names) {
		switch {
		case j == len(next.names) || (i < len(prev.names) && prev.names[i] < next.names[j]):
			removed = append(removed, prev.names[i])
			i++
		case i == len(prev.names) || next.names[j] < prev.names[i]:
			added = append(added, next.names[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}

// parseInfo extracts the references and addresses of one resource.
func parseInfo(typeURL string, b []byte) *resInfo {
	switch typeURL {
	case resourcev3.ListenerType:
		l := &listenerv3.Listener{}
		if err := proto.Unmarshal(b, l); err != nil {
			return &resInfo{bad: true}
		}
		info := &resInfo{}
		addHCM := func(a *anypb.Any) {
			if a == nil || a.GetTypeUrl() != "type.googleapis.com/"+string((&hcmv3.HttpConnectionManager{}).ProtoReflect().Descriptor().FullName()) {
				return
			}
			h := &hcmv3.HttpConnectionManager{}
			if err := a.UnmarshalTo(h); err != nil {
				info.bad = true
				return
			}
			if n := h.GetRds().GetRouteConfigName(); n != "" {
				info.refs = append(info.refs, n)
			}
		}
		addHCM(l.GetApiListener().GetApiListener())
		for _, fc := range append(slices.Clone(l.GetFilterChains()), l.GetDefaultFilterChain()) {
			for _, f := range fc.GetFilters() {
				addHCM(f.GetTypedConfig())
			}
		}
		return info
	case resourcev3.ClusterType:
		c := &clusterv3.Cluster{}
		if err := proto.Unmarshal(b, c); err != nil {
			return &resInfo{bad: true}
		}
		if c.GetType() != clusterv3.Cluster_EDS {
			return &resInfo{}
		}
		n := c.GetEdsClusterConfig().GetServiceName()
		if n == "" {
			n = c.GetName()
		}
		return &resInfo{refs: []string{n}}
	case resourcev3.RouteType:
		rc := &routev3.RouteConfiguration{}
		if err := proto.Unmarshal(b, rc); err != nil {
			return &resInfo{bad: true}
		}
		info := &resInfo{}
		for _, vh := range rc.GetVirtualHosts() {
			info.addrs = append(info.addrs, vh.GetDomains()...)
		}
		return info
	case resourcev3.EndpointType:
		cla := &endpointv3.ClusterLoadAssignment{}
		if err := proto.Unmarshal(b, cla); err != nil {
			return &resInfo{bad: true}
		}
		info := &resInfo{}
		for _, le := range cla.GetEndpoints() {
			for _, e := range le.GetLbEndpoints() {
				if a := e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress(); a != "" {
					info.addrs = append(info.addrs, a)
				}
			}
		}
		return info
	default:
		return &resInfo{}
	}
}
