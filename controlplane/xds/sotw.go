package xds

import (
	"context"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// sotwConn is a state-of-the-world stream, aggregated or of one type.
type sotwConn interface {
	Context() context.Context
	SendMsg(any) error
	RecvMsg(any) error
}

// serveSotw runs one state-of-the-world stream; defaultType is "" for ADS.
func (s *Server) serveSotw(ss sotwConn, defaultType string) error {
	st := s.newStream(false, defaultType)
	s.tracker.open(st.id, defaultType, false)
	defer st.close()
	recv := func() (*sotwReq, error) {
		r := &sotwReq{}
		return r, ss.RecvMsg(r)
	}
	handle := func(r *sotwReq) error {
		defer r.release()
		return st.sotwRequest(r)
	}
	return run(ss.Context(), s.ctx, st, recv, handle, func() error { return st.flushSotw(ss) })
}

// sotwRequest applies one request: an ACK, a NACK or a new subscription.
// Nothing is computed per subscribed name unless the names changed.
func (st *stream) sotwRequest(r *sotwReq) error {
	req := &r.req
	typeURL, err := st.typeOf(req.GetTypeUrl())
	if err != nil {
		return err
	}
	err = st.begin(req.GetNode(), func(n *corev3.Node) error {
		return st.srv.tracker.request(st.id, n, typeURL, r.count, req.GetResponseNonce(), req.GetErrorDetail())
	})
	if err != nil {
		return err
	}
	g := st.group
	tc := g.types[typeURL]
	if tc == nil {
		// Answer a type Rosen does not serve once with no resources (so the
		// client learns there is nothing), then stay silent.
		if last, ok := st.unknown[typeURL]; ok && last != "" && req.GetResponseNonce() != last {
			return nil
		}
		if _, ok := st.unknown[typeURL]; !ok {
			st.unknown[typeURL] = ""
		}
		// Not after a NACK of that answer: answering it again would be a
		// NACK loop.
		if req.GetVersionInfo() == "" && req.GetErrorDetail() == nil {
			st.queued = append(st.queued, typeURL)
		}
		return nil
	}
	if w := st.watches[typeURL]; w != nil && w.nonce != "" && req.GetResponseNonce() != w.nonce {
		// A stale nonce: the client has not seen the last response yet;
		// its answer to that one will come (xDS protocol, "resource updates").
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	w := st.watchFor(tc)
	// An ACK or a NACK alike: the version sent is what the client holds
	// (or refused), so a NACK is not answered with the same resources again.
	w.ready = true
	if r.count > 0 {
		w.legacy = false
	}
	if w.sub != nil && r.count > 0 && r.run == w.run {
		// The same names in the same order as last time: the usual ACK.
		return nil
	}
	var sub *subscription
	if r.count > 0 {
		// Names another stream sent the same way: its subscription.
		sub = tc.byRunOf(r.run)
	}
	if sub == nil {
		k := r.subKey(w.legacy)
		if w.sub != nil && k == w.sub.key {
			w.run = r.run
			return nil
		}
		// A fleet moving to the same names reads them once: the first
		// stream builds the subscription, the others find it by key.
		var err error
		if sub, err = tc.intern(k, r.names); err != nil {
			return err
		}
		if r.count > 0 {
			tc.addRun(sub, r.run)
		}
	}
	w.run = r.run
	if sub == w.sub {
		tc.release(sub)
		return nil
	}
	if !w.first {
		w.pending = mergeNames(w.pending, sub.addedSince(w.sub))
	}
	tc.release(w.sub)
	w.sub = sub
	return nil
}

// mergeNames appends b to a without writing into either (both may be shared).
func mergeNames(a, b []string) []string {
	switch {
	case len(b) == 0:
		return a
	case len(a) == 0:
		return b
	}
	out := make([]string, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

// flushSotw sends every response that is due, clusters before endpoints and
// listeners before routes.
func (st *stream) flushSotw(ss sotwConn) error {
	out, to, err := st.due((*watch).buildSotw)
	if err != nil {
		return err
	}
	for i, r := range out {
		nonce, err := st.send(ss, r)
		if err != nil {
			return err
		}
		to[i].nonce = nonce
	}
	for _, t := range st.queued {
		r, err := newResponse(t, unsupportedVersion, &discoveryv3.DiscoveryResponse{TypeUrl: t, VersionInfo: unsupportedVersion})
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		if st.unknown[t], err = st.send(ss, r); err != nil {
			return err
		}
	}
	st.queued = st.queued[:0]
	return nil
}

// buildSotw returns the response due on w, or nil. Called with the group's
// lock held. LDS and CDS responses carry every subscribed resource; RDS, EDS
// and SDS responses carry only the subscribed resources changed since the
// last one, plus the newly subscribed ones (the xDS protocol lets a client
// keep what a response of these types leaves out). Watches of one
// subscription at the same versions share the response.
func (w *watch) buildSotw() (*response, error) {
	if !w.ready || w.upToDate() {
		return nil, nil
	}
	r, err := w.tc.memo(w.sub, pendingKey(w), w.sotwMessage)
	w.markSent()
	if r != nil {
		w.ready = false
	}
	return r, err
}

// sotwMessage is the response due on w (nil: nothing to send).
func (w *watch) sotwMessage() proto.Message {
	tc := w.tc
	var es []*entry
	send := w.first
	switch {
	case w.first:
		es = tc.fullOf(w.sub)
	case tc.fullState:
		send = len(w.pending) > 0
		if !send && !tc.changedSince(w.sent, w.sub, func(string) { send = true }) {
			send = true
		}
		if send {
			es = tc.fullOf(w.sub)
		}
	default:
		es = w.changedEntries()
		send = len(es) > 0
	}
	if !send {
		return nil
	}
	return &discoveryv3.DiscoveryResponse{VersionInfo: tc.versionString(tc.version), TypeUrl: tc.typeURL, Resources: anys(es)}
}

// changedEntries is what exists of the subscribed names changed since the
// last response and of the newly subscribed names — O(changes), unless the
// change log no longer reaches back (then every subscribed resource).
func (w *watch) changedEntries() []*entry {
	tc := w.tc
	var es []*entry
	seen := map[string]struct{}{}
	add := func(n string) {
		if _, ok := seen[n]; ok {
			return
		}
		seen[n] = struct{}{}
		if e := tc.entries[n]; e != nil {
			es = append(es, e)
		}
	}
	if !tc.changedSince(w.sent, w.sub, add) {
		return tc.fullOf(w.sub)
	}
	for _, n := range w.pending {
		if w.sub.has(n) {
			add(n)
		}
	}
	return es
}
