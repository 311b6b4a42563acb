package xds

import (
	"context"
	"slices"
	"sort"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// deltaConn is an incremental stream, aggregated or of one type.
type deltaConn interface {
	Context() context.Context
	SendMsg(any) error
	Recv() (*discoveryv3.DeltaDiscoveryRequest, error)
}

// serveDelta runs one delta stream; defaultType is "" for ADS.
func (s *Server) serveDelta(ds deltaConn, defaultType string) error {
	st := s.newStream(true, defaultType)
	s.tracker.open(st.id, defaultType, true)
	defer st.close()
	return run(ds.Context(), s.ctx, st, ds.Recv, st.deltaRequest, func() error { return st.flushDelta(ds) })
}

// deltaRequest applies the subscription changes of one request (ACKs and
// NACKs carry none). Only the names in the request are looked at.
func (st *stream) deltaRequest(req *discoveryv3.DeltaDiscoveryRequest) error {
	typeURL, err := st.typeOf(req.GetTypeUrl())
	if err != nil {
		return err
	}
	subscribe, unsubscribe := req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe()
	names := max(len(subscribe)+len(unsubscribe), len(req.GetInitialResourceVersions()))
	err = st.begin(req.GetNode(), func(n *corev3.Node) error {
		return st.srv.tracker.request(st.id, n, typeURL, names, req.GetResponseNonce(), req.GetErrorDetail())
	})
	if err != nil {
		return err
	}
	g := st.group
	tc := g.types[typeURL]
	if tc == nil {
		if _, ok := st.unknown[typeURL]; !ok && req.GetResponseNonce() == "" {
			st.unknown[typeURL] = ""
			st.queued = append(st.queued, typeURL)
		}
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	w := st.watches[typeURL]
	var old subKey
	if w == nil {
		w = st.watchFor(tc)
		w.initial = req.GetInitialResourceVersions()
		old.wildcard = len(subscribe) == 0 // legacy wildcard
	} else {
		old = w.sub.key
	}
	if w.legacy && len(subscribe) > 0 {
		w.legacy = false
	}
	k := old
	have := func(n string) bool {
		if w.sub == nil {
			return false
		}
		_, ok := w.sub.names[n]
		return ok
	}
	// Duplicates are dropped by sorting a copy, not with a set: a gateway
	// subscribes to thousands of names at once, and an ACK to none.
	var added, removed []string
	for _, n := range uniqueNames(subscribe) {
		if n == wildcardName {
			k.wildcard = true
			continue
		}
		if !have(n) {
			added = append(added, n)
			k.add(n)
		}
	}
	for _, n := range uniqueNames(unsubscribe) {
		if n == wildcardName {
			k.wildcard = false
			continue
		}
		if have(n) {
			removed = append(removed, n)
			k.remove(n)
		}
	}
	if limit := st.srv.opts.MaxResourceNames; k.n > limit {
		return status.Errorf(codes.InvalidArgument, "xds: %d resource names subscribed (limit %d)", k.n, limit)
	}
	if w.sub != nil && k == w.sub.key {
		return nil
	}
	prev := w.sub
	sub, err := tc.intern(k, func() ([]string, error) {
		var out []string
		if prev != nil {
			for n := range prev.names {
				if _, gone := slices.BinarySearch(removed, n); !gone {
					out = append(out, n)
				}
			}
		}
		return append(out, added...), nil
	})
	if err != nil {
		return err
	}
	switch {
	case w.first:
	case k.wildcard && (prev == nil || !prev.key.wildcard):
		w.first = true // newly wildcard: everything is due
	default:
		w.pending = mergeNames(w.pending, added)
	}
	tc.release(prev)
	w.sub = sub
	return nil
}

// uniqueNames is names sorted without duplicates (names itself when it has
// fewer than two).
func uniqueNames(names []string) []string {
	if len(names) < 2 {
		return names
	}
	return slices.Compact(slices.Sorted(slices.Values(names)))
}

// flushDelta sends every response that is due. Delta clients need not
// answer one response before the next, so only changes gate a response.
func (st *stream) flushDelta(ds deltaConn) error {
	out, _, err := st.due((*watch).buildDelta)
	if err != nil {
		return err
	}
	for _, t := range st.queued {
		r, err := newResponse(t, unsupportedVersion, &discoveryv3.DeltaDiscoveryResponse{TypeUrl: t, SystemVersionInfo: unsupportedVersion})
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		out = append(out, r)
	}
	st.queued = st.queued[:0]
	for _, r := range out {
		if _, err := st.send(ds, r); err != nil {
			return err
		}
	}
	return nil
}

// buildDelta returns the response due on w, or nil. Called with the
// group's lock held; shared like buildSotw's, except a first response that
// depends on the versions the client already holds.
func (w *watch) buildDelta() (*response, error) {
	if w.upToDate() {
		return nil, nil
	}
	var r *response
	var err error
	if w.first && len(w.initial) > 0 {
		if m := w.deltaMessage(); m != nil {
			r, err = newResponse(w.tc.typeURL, w.tc.versionString(w.tc.version), m)
		}
	} else {
		r, err = w.tc.memo(w.sub, pendingKey(w), w.deltaMessage)
	}
	w.markSent()
	return r, err
}

// deltaMessage is the response due on w (nil: nothing to send): the
// subscribed resources changed since the last response and the newly
// subscribed ones, and the subscribed names deleted meanwhile.
func (w *watch) deltaMessage() proto.Message {
	tc := w.tc
	first := w.first
	var res []*discoveryv3.Resource
	var removed []string
	if first || !tc.changedSince(w.sent, w.sub, func(string) {}) {
		// Everything subscribed, less what the client says it holds.
		for _, e := range tc.fullOf(w.sub) {
			if v, ok := w.initial[e.name]; !ok || v != e.delta.Version {
				res = append(res, e.delta)
			}
		}
		for n := range w.initial {
			if w.sub.has(n) && tc.entries[n] == nil {
				removed = append(removed, n)
			}
		}
		if !first && !w.sub.key.wildcard {
			for n := range w.sub.names {
				if tc.entries[n] == nil {
					removed = append(removed, n)
				}
			}
		}
		sort.Strings(removed)
	} else {
		seen := map[string]struct{}{}
		add := func(n string, known bool) {
			if _, ok := seen[n]; ok {
				return
			}
			seen[n] = struct{}{}
			if e := tc.entries[n]; e != nil {
				res = append(res, e.delta)
			} else if known {
				removed = append(removed, n)
			}
		}
		tc.changedSince(w.sent, w.sub, func(n string) { add(n, true) })
		for _, n := range w.pending {
			if w.sub.has(n) {
				add(n, false)
			}
		}
	}
	if !first && len(res) == 0 && len(removed) == 0 {
		return nil
	}
	return &discoveryv3.DeltaDiscoveryResponse{
		SystemVersionInfo: tc.versionString(tc.version), TypeUrl: tc.typeURL, Resources: res, RemovedResources: removed,
	}
}
