package xds

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// maxLogNames bounds the change log of one type. A watch that fell further
// behind (a SotW client that never answers a response) gets a full response
// instead of the changes.
const maxLogNames = 100000

// entry is one resource at its current version: marshalled once, and the
// same bytes go to every stream of the group.
type entry struct {
	name    string
	res     types.Resource
	any     *anypb.Any
	delta   *discoveryv3.Resource // the delta form, sharing any
	version uint64                // type version at which it last changed
}

// change is the names changed or deleted by one version of a type.
type change struct {
	version uint64
	names   []string
}

// typeCache holds the resources of one type for one group, the watches
// parked on it and the interned subscriptions. Guarded by the group's lock.
type typeCache struct {
	typeURL string
	prefix  string
	// fullState: a SotW response carries every subscribed resource and the
	// client drops what is missing (LDS, CDS). Otherwise (RDS, EDS, SDS) a
	// response carries only what changed.
	fullState bool
	version   uint64
	changedAt time.Time // when version was published
	entries   map[string]*entry

	all        []*entry // every entry sorted by name, memoised per version
	allVersion uint64

	// log holds the changes of the versions after logFloor, oldest first.
	log      []change
	logFloor uint64
	logNames int
	maxLog   int // maxLogNames, but for tests

	watches map[*watch]struct{}
	subs    map[subKey]*subscription
	// byRun finds a subscription by the encoded names of a SotW request
	// that chose it (see nameRun), so that a fleet moving to the same
	// names hashes them one by one only once.
	byRun map[nameRun]*subscription
}

func newTypeCache(typeURL, prefix string) *typeCache {
	return &typeCache{
		typeURL:   typeURL,
		prefix:    prefix,
		fullState: typeURL == resourcev3.ListenerType || typeURL == resourcev3.ClusterType,
		entries:   map[string]*entry{},
		maxLog:    maxLogNames,
		watches:   map[*watch]struct{}{},
		subs:      map[subKey]*subscription{},
		byRun:     map[nameRun]*subscription{},
	}
}

func (tc *typeCache) versionString(v uint64) string {
	return tc.prefix + strconv.FormatUint(v, 10)
}

// newEntry marshals a resource once, deterministically, and derives its
// delta version from the bytes (so a client reconnecting to another rosen
// process is not sent what it already has).
func newEntry(typeURL, name string, res types.Resource) (*entry, error) {
	b, err := marshalResource(typeURL, name, res)
	if err != nil {
		return nil, err
	}
	return entryOf(typeURL, name, res, b), nil
}

// marshalResource marshals res deterministically: the same resource gives
// the same bytes, and so the same version.
func marshalResource(typeURL, name string, res types.Resource) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("xds: marshal %s %q: %w", typeName(typeURL), name, err)
	}
	return b, nil
}

// marshalMemo holds the bytes of resources marshalled during one update,
// by identity: the groups of a mesh share its outbound clusters and load
// assignments (translate.Shared). A nil memo marshals every time.
type marshalMemo map[types.Resource][]byte

func (m marshalMemo) marshal(typeURL, name string, res types.Resource) ([]byte, error) {
	if b, ok := m[res]; ok {
		return b, nil
	}
	b, err := marshalResource(typeURL, name, res)
	if err == nil && m != nil {
		m[res] = b
	}
	return b, err
}

// entryOf is the entry of res, marshalled as b.
func entryOf(typeURL, name string, res types.Resource, b []byte) *entry {
	h := fnv.New64a()
	_, _ = h.Write(b)
	a := &anypb.Any{TypeUrl: typeURL, Value: b}
	return &entry{
		name: name, res: res, any: a,
		delta: &discoveryv3.Resource{Name: name, Version: strconv.FormatUint(h.Sum64(), 36), Resource: a},
	}
}

// apply installs a version: changed resources (already marshalled) and
// deleted names. It marks the watches whose subscription a changed name is
// in — O(changed) per watch, memoised per shared subscription — and moves
// the others' version forward without waking them.
func (tc *typeCache) apply(changed []*entry, deleted []string) {
	if len(changed) == 0 && len(deleted) == 0 {
		return
	}
	tc.version++
	tc.changedAt = time.Now()
	v := tc.version
	names := make([]string, 0, len(changed)+len(deleted))
	for _, e := range changed {
		e.version = v
		tc.entries[e.name] = e
		names = append(names, e.name)
	}
	for _, n := range deleted {
		delete(tc.entries, n)
		names = append(names, n)
	}
	tc.log = append(tc.log, change{version: v, names: names})
	tc.logNames += len(names)

	matched := make(map[*subscription]bool)
	for w := range tc.watches {
		if w.dirty {
			continue
		}
		m, ok := matched[w.sub]
		if !ok {
			m = w.sub == nil || w.sub.key.wildcard
			for i := 0; !m && i < len(names); i++ {
				m = w.sub.has(names[i])
			}
			matched[w.sub] = m
		}
		switch {
		case m:
			w.dirty = true
			w.s.wake()
		case w.idle():
			w.sent = v
		}
	}
	tc.trimLog()
}

// trimLog drops the changes every watch has already seen, and the oldest
// ones beyond maxLog names.
func (tc *typeCache) trimLog() {
	floor := tc.version
	for w := range tc.watches {
		if !w.first && w.sent < floor {
			floor = w.sent
		}
	}
	i := 0
	for i < len(tc.log) && (tc.log[i].version <= floor || tc.logNames > tc.maxLog) {
		tc.logNames -= len(tc.log[i].names)
		tc.logFloor = tc.log[i].version
		i++
	}
	if i > 0 {
		tc.log = append(tc.log[:0:0], tc.log[i:]...)
	}
}

// changedSince calls fn for every name of sub changed or deleted after
// version since, each once, and reports false if the log no longer reaches
// back that far (the caller then treats everything as changed).
func (tc *typeCache) changedSince(since uint64, sub *subscription, fn func(name string)) bool {
	if since < tc.logFloor {
		return false
	}
	i := sort.Search(len(tc.log), func(i int) bool { return tc.log[i].version > since })
	var seen map[string]struct{}
	if len(tc.log)-i > 1 {
		seen = map[string]struct{}{}
	}
	for _, c := range tc.log[i:] {
		for _, n := range c.names {
			if !sub.has(n) {
				continue
			}
			if seen != nil {
				if _, ok := seen[n]; ok {
					continue
				}
				seen[n] = struct{}{}
			}
			fn(n)
		}
	}
	return true
}

// allEntries is every resource sorted by name, memoised per version.
func (tc *typeCache) allEntries() []*entry {
	if tc.all != nil && tc.allVersion == tc.version {
		return tc.all
	}
	out := make([]*entry, 0, len(tc.entries))
	for _, e := range tc.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	tc.all, tc.allVersion = out, tc.version
	return out
}

// anys is the wire form of entries.
func anys(es []*entry) []*anypb.Any {
	out := make([]*anypb.Any, len(es))
	for i, e := range es {
		out[i] = e.any
	}
	return out
}
