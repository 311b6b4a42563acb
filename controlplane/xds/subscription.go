package xds

import (
	"hash/maphash"
	"sort"
	"strings"
)

// wildcardName is the explicit wildcard subscription of the xDS protocol.
const wildcardName = "*"

// Seeds of the subscription hash, random per process so that a client cannot
// craft two name lists with the same key. A collision could at worst give a
// stream the resources of another subscription of its own group.
var subSeed1, subSeed2 = maphash.MakeSeed(), maphash.MakeSeed()

// subKey identifies a set of subscribed names without holding them: two
// order-independent 64-bit sums of seeded name hashes, the number of names
// and the wildcard flag.
type subKey struct {
	h1, h2   uint64
	n        int
	wildcard bool
}

func (k *subKey) add(name string) {
	k.h1 += maphash.String(subSeed1, name)
	k.h2 += maphash.String(subSeed2, name)
	k.n++
}

func (k *subKey) remove(name string) {
	k.h1 -= maphash.String(subSeed1, name)
	k.h2 -= maphash.String(subSeed2, name)
	k.n--
}

// sotwKey is the key of a state-of-the-world request's names. legacy says an
// empty list still means "everything" (no names were ever sent on the
// stream for this type).
func sotwKey(names []string, legacy bool) subKey {
	k := subKey{wildcard: legacy && len(names) == 0}
	for _, n := range names {
		if n == wildcardName {
			k.wildcard = true
			continue
		}
		k.add(n)
	}
	return k
}

// subscription is a set of subscribed names, interned per group and type:
// every stream with the same names shares one. It is immutable once built
// (refs and the memoised fields are guarded by the group's lock).
type subscription struct {
	key   subKey
	names map[string]struct{}
	refs  int

	// full is every subscribed resource that exists at fullVersion, the
	// body of a full-state (LDS/CDS) or first response.
	fullVersion uint64
	full        []*entry
	// addedFrom/added memoise the names this subscription adds to another
	// one: a change of service moves a whole fleet from one set to the next.
	addedFrom *subscription
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
	if prev != nil && s.addedFrom == prev {
		return s.added
	}
	var out []string
	for n := range s.names {
		if prev == nil || !prev.has(n) {
			out = append(out, n)
		}
	}
	s.addedFrom, s.added = prev, out
	return out
}

// intern returns the subscription of key k, building it with names on first
// use. Names are stored as the cache's own strings when the resource exists,
// so the bytes of a request are not retained.
func (tc *typeCache) intern(k subKey, names func(yield func(string))) *subscription {
	if s, ok := tc.subs[k]; ok {
		s.refs++
		return s
	}
	s := &subscription{key: k, names: make(map[string]struct{}, k.n), refs: 1}
	names(func(n string) {
		if n == wildcardName {
			return
		}
		if e, ok := tc.entries[n]; ok {
			n = e.name
		} else {
			n = strings.Clone(n)
		}
		s.names[n] = struct{}{}
	})
	tc.subs[k] = s
	return s
}

// release drops one reference to s and forgets it when none is left.
func (tc *typeCache) release(s *subscription) {
	if s == nil {
		return
	}
	s.refs--
	if s.refs <= 0 {
		delete(tc.subs, s.key)
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
