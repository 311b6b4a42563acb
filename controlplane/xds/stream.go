package xds

import (
	"context"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unsupportedVersion is the version of the empty answer to a type Rosen does
// not serve.
const unsupportedVersion = "unsupported"

// errNoTypeURL ends an ADS stream whose request names no resource type.
var errNoTypeURL = status.Error(codes.InvalidArgument, "xds: type URL is required for ADS")

// stream is the server side of one xDS stream (SotW or delta, ADS or one
// type). Its fields belong to the stream's goroutine, except the watches'
// state, which the group's lock guards.
type stream struct {
	srv         *Server
	id          int64
	delta       bool
	defaultType string // "" for ADS
	node        *corev3.Node
	group       *group
	wakeCh      chan struct{}
	watches     map[string]*watch // by type URL, served types only
	nonce       uint64
	// unknown holds, per type Rosen does not serve, the nonce of the empty
	// answer sent ("" until one is sent); queued lists answers to send.
	unknown map[string]string
	queued  []string
}

// watch is one stream's interest in one type of its group: a reference to
// an interned subscription and the version the client is up to date with.
// Guarded by the group's lock, except nonce (stream goroutine only).
type watch struct {
	s   *stream
	tc  *typeCache
	sub *subscription
	// legacy: no name was ever sent, so an empty list means everything.
	legacy bool
	// first: nothing sent yet, or a full resend is due.
	first bool
	// ready: the client answered the last SotW response (always true for
	// delta). A SotW stream has at most one response of a type in flight.
	ready bool
	// dirty: a change since sent touches the subscription.
	dirty bool
	// sent: the type version the client holds for its subscription.
	sent uint64
	// pending: names subscribed since the last response (read-only, may be
	// shared with other watches).
	pending []string
	// initial: delta initial_resource_versions, used by the first response.
	initial map[string]string
	nonce   string
	// run: the names of the last SotW request that set sub, as encoded.
	run nameRun
}

// idle reports a watch with nothing to send and nothing in flight.
func (w *watch) idle() bool {
	return w.ready && !w.dirty && !w.first && len(w.pending) == 0
}

// upToDate reports that the next build has nothing to do (the O(1) path of
// an ACK when nothing changed).
func (w *watch) upToDate() bool {
	return !w.first && !w.dirty && len(w.pending) == 0 && w.sent == w.tc.version
}

// markSent records a response built at the current version.
func (w *watch) markSent() {
	w.first, w.dirty, w.pending, w.initial, w.sent = false, false, nil, nil, w.tc.version
}

func (s *Server) newStream(delta bool, defaultType string) *stream {
	return &stream{
		srv: s, id: s.streamIDs.Add(1), delta: delta, defaultType: defaultType,
		wakeCh: make(chan struct{}, 1), watches: map[string]*watch{}, unknown: map[string]string{},
	}
}

func (st *stream) wake() {
	select {
	case st.wakeCh <- struct{}{}:
	default:
	}
}

func (st *stream) nextNonce() string {
	st.nonce++
	return strconv.FormatUint(st.nonce, 10)
}

// typeOf resolves the request's type URL against the stream's service.
func (st *stream) typeOf(typeURL string) (string, error) {
	if typeURL != "" {
		return typeURL, nil
	}
	if st.defaultType == "" {
		return "", errNoTypeURL
	}
	return st.defaultType, nil
}

// begin records a request's node (the first one must carry it; later ones
// may omit it), checks it with the tracker and binds the stream to its
// group. It returns the node to use for the request.
func (st *stream) begin(n *corev3.Node, check func(*corev3.Node) error) error {
	if n != nil {
		st.node = n
	}
	if err := check(st.node); err != nil {
		return err
	}
	if st.group != nil {
		return nil
	}
	g, err := st.srv.groupFor(st.node)
	if err != nil {
		return err
	}
	st.group = g
	return nil
}

// watchFor returns the stream's watch of a served type, creating and
// parking it on first use. Called with the group's lock held.
func (st *stream) watchFor(tc *typeCache) *watch {
	w := st.watches[tc.typeURL]
	if w == nil {
		w = &watch{s: st, tc: tc, legacy: true, first: true, ready: true}
		st.watches[tc.typeURL] = w
		tc.watches[w] = struct{}{}
	}
	return w
}

// due builds, under the group's lock, the responses due on the stream's
// watches (clusters before endpoints, listeners before routes) and returns
// them with their watches.
func (st *stream) due(build func(*watch) (*response, error)) ([]*response, []*watch, error) {
	if st.group == nil || len(st.watches) == 0 {
		return nil, nil, nil
	}
	st.group.mu.Lock()
	defer st.group.mu.Unlock()
	if !st.group.published {
		return nil, nil, nil // parked until the group's first good configuration
	}
	var out []*response
	var to []*watch
	for _, t := range servedTypes {
		w := st.watches[t]
		if w == nil {
			continue
		}
		r, err := build(w)
		if err != nil {
			return nil, nil, status.Error(codes.Internal, err.Error())
		}
		if r != nil {
			out, to = append(out, r), append(to, w)
		}
	}
	return out, to, nil
}

// close unparks the stream's watches and releases their subscriptions.
func (st *stream) close() {
	st.srv.tracker.closed(st.id, st.group != nil)
	if st.group == nil {
		return
	}
	st.group.mu.Lock()
	defer st.group.mu.Unlock()
	for _, w := range st.watches {
		delete(w.tc.watches, w)
		w.tc.release(w.sub)
		w.sub = nil
	}
}

// run is the loop shared by both protocols: requests from recv, wake-ups
// from the caches, and a flush of whatever is due after each.
func run[Req any](ctx, srvCtx context.Context, st *stream, recv func() (Req, error), handle func(Req) error, flush func() error) error {
	reqs := make(chan Req)
	go func() {
		defer close(reqs)
		for {
			r, err := recv()
			if err != nil {
				return
			}
			select {
			case reqs <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-srvCtx.Done():
			return nil
		case r, ok := <-reqs:
			if !ok {
				return nil
			}
			if err := handle(r); err != nil {
				return err
			}
		case <-st.wakeCh:
		}
		if err := flush(); err != nil {
			return err
		}
	}
}
