package xds

import (
	"hash/maphash"
	"sort"
	"strings"
)

// wildcardName is the explicit wildcard subscription of the xDS protocol.
const wildcardName = "*"

// Seed of the subscription hash, random per process so that a client cannot
// craft two name lists with the same key. A collision could at worst give a
// stream the resources of another subscription of its own group.
var subSeed = maphash.MakeSeed()

// subKey identifies a set of subscribed names without holding them: the
// order-independent sum of seeded 64-bit name hashes, the number of names,
// their total length and the wildcard flag.
type subKey struct {
	sum      uint64
	n        int
	bytes    int
	wildcard bool
}

func (k *subKey) add(name string) {
	k.sum += maphash.String(subSeed, name)
	k.n++
	k.bytes += len(name)
}

// addBytes is add for a name still in its encoded request (maphash hashes
// a string and its bytes alike).
func (k *subKey) addBytes(name []byte) {
	k.sum += maphash.Bytes(subSeed, name)
	k.n++
	k.bytes += len(name)
}

func (k *subKey) remove(name string) {
	k.sum -= maphash.String(subSeed, name)
	k.n--
	k.bytes -= len(name)
}

// subscription is a set of subscribed names, interned per group and type:
// every stream with the same names shares one. It is immutable once built
// (refs and the memoised fields are guarded by the group's lock).
type subscription struct {
	key   subKey
	names map[string]struct{}
	refs  int
	// runs are the encoded name lists it is found by in byRun (a few:
	// clients list the same names in one order or another).
	runs []nameRun

	// full is every subscribed resource that exists at fullVersion, the
	// body of a full-state (LDS/CDS) or first response.
	fullVersion uint64
	full        []*entry
	// addedFrom/added memoise the names this subscription adds to another
	// one: a change of service moves a whole fleet from one set to the next.
	// The other is remembered by key, so that old sets can be collected.
	addedFrom *subKey
	added     []string
	// memo holds the responses built at memoVersion, shared by the
	// streams of this subscription that are due the same one.
	memo        map[memoKey]*response
	memoVersion uint64
}

func (s *subscription) has(name string) bool {
	if s.key.wildcard {
		return true
	}
	_, ok := s.names[name]
	return ok
}

// addedSince lists the names of s that prev lacks (all of them when prev is
// nil). A wildcard s adds nothing by name: its responses carry everything.
func (s *subscription) addedSince(prev *subscription) []string {
	if s.key.wildcard {
		return nil
	}
	if prev != nil && s.addedFrom != nil && *s.addedFrom == prev.key {
		return s.added
	}
	var out []string
	for n := range s.names {
		if prev == nil || !prev.has(n) {
			out = append(out, n)
		}
	}
	if prev != nil {
		k := prev.key
		s.addedFrom, s.added = &k, out
	}
	return out
}

// intern returns the subscription of key k, building it with names on first
// use (names is not called otherwise). Names are stored as the cache's own
// strings when the resource exists, so the bytes of a request are not
// retained.
func (tc *typeCache) intern(k subKey, names func() ([]string, error)) (*subscription, error) {
	if s, ok := tc.subs[k]; ok {
		s.refs++
		return s, nil
	}
	list, err := names()
	if err != nil {
		return nil, err
	}
	s := &subscription{key: k, names: make(map[string]struct{}, len(list)), refs: 1}
	for _, n := range list {
		if n == wildcardName {
			continue
		}
		if e, ok := tc.entries[n]; ok {
			n = e.name
		} else {
			n = strings.Clone(n)
		}
		s.names[n] = struct{}{}
	}
	tc.subs[k] = s
	return s, nil
}

// maxRuns bounds the runs a subscription is found by.
const maxRuns = 4

// byRunOf returns, with a reference taken, the subscription a request
// with these encoded names chose before, or nil.
func (tc *typeCache) byRunOf(run nameRun) *subscription {
	s := tc.byRun[run]
	if s != nil {
		s.refs++
	}
	return s
}

// addRun lets requests with the encoded names run find s.
func (tc *typeCache) addRun(s *subscription, run nameRun) {
	if _, ok := tc.byRun[run]; ok || len(s.runs) >= maxRuns {
		return
	}
	s.runs = append(s.runs, run)
	tc.byRun[run] = s
}

// release drops one reference to s and forgets it when none is left.
func (tc *typeCache) release(s *subscription) {
	if s == nil {
		return
	}
	s.refs--
	if s.refs <= 0 {
		delete(tc.subs, s.key)
		for _, r := range s.runs {
			if tc.byRun[r] == s {
				delete(tc.byRun, r)
			}
		}
	}
}

// fullOf returns every resource of s that exists now, sorted by name;
// memoised per version, so the streams sharing s share the slice.
func (tc *typeCache) fullOf(s *subscription) []*entry {
	if s.key.wildcard {
		return tc.allEntries()
	}
	if s.full != nil && s.fullVersion == tc.version {
		return s.full
	}
	out := make([]*entry, 0, len(s.names))
	for n := range s.names {
		if e, ok := tc.entries[n]; ok {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	s.full, s.fullVersion = out, tc.version
	return out
}
