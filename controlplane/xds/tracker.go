package xds

import (
	"sort"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxTypesPerStream bounds the distinct type URLs one stream may watch, so a
// client cannot grow the server's per-stream state with invented types.
const maxTypesPerStream = 16

// maxNackMessage bounds the error_detail text kept in status and logs.
const maxNackMessage = 4096

// tracker identifies each stream's node, enforces request limits and records
// ACKs and NACKs for /debug/syncz.
type tracker struct {
	log      *zap.Logger
	metrics  *metrics
	maxNames int
	now      func() time.Time

	mu      sync.Mutex
	streams map[int64]*streamState
	groups  map[string]*groupConns
}

type groupConns struct {
	streams    int
	lastClosed time.Time
}

type streamState struct {
	delta   bool
	service string
	since   time.Time
	known   bool
	node    nodeInfo
	nodePtr *corev3.Node
	types   map[string]*typeState
}

type typeState struct {
	TypeStatus
	lastNackNonce string
}

func newTracker(log *zap.Logger, m *metrics, maxNames int) *tracker {
	return &tracker{
		log: log, metrics: m, maxNames: maxNames, now: time.Now,
		streams: map[int64]*streamState{},
		groups:  map[string]*groupConns{},
	}
}

func serviceName(typeURL string) string {
	if typeURL == "" {
		return "ADS"
	}
	return typeName(typeURL)
}

func (t *tracker) open(id int64, typeURL string, delta bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.streams[id] = &streamState{delta: delta, service: serviceName(typeURL), since: t.now(), types: map[string]*typeState{}}
}

// closed forgets a stream; bound says it was served by a group. A stream
// refused its group (MaxGroups) counted itself in a group that does not
// exist, which dropIdleGroups never visits: its entry goes with its last
// stream, or every made-up label set would stay in groups for ever.
func (t *tracker) closed(id int64, bound bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.streams[id]
	if !ok {
		return
	}
	delete(t.streams, id)
	if !st.known {
		return
	}
	t.metrics.connected.WithLabelValues(string(st.node.Proxy.Kind)).Dec()
	if g := t.groups[st.node.Group]; g != nil {
		g.streams--
		g.lastClosed = t.now()
		if !bound && g.streams <= 0 {
			delete(t.groups, st.node.Group)
		}
	}
}

// identify records the stream's node from its first request and rejects a
// stream that starts without one or changes node midway. Called under t.mu.
func (t *tracker) identify(st *streamState, n *corev3.Node) error {
	if st.known && (n == nil || n == st.nodePtr) {
		return nil
	}
	if n == nil {
		return status.Error(codes.InvalidArgument, errNoNode.Error())
	}
	info, err := classify(n)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if st.known {
		if info.ID != st.node.ID || info.Group != st.node.Group {
			return status.Errorf(codes.InvalidArgument, "xds: node changed within a stream (%q to %q)", st.node.ID, info.ID)
		}
		st.nodePtr = n
		return nil
	}
	st.known, st.node, st.nodePtr = true, info, n
	t.metrics.connected.WithLabelValues(string(info.Proxy.Kind)).Inc()
	g := t.groups[info.Group]
	if g == nil {
		g = &groupConns{}
		t.groups[info.Group] = g
	}
	g.streams++
	return nil
}

// request checks one request and records what it acknowledges.
func (t *tracker) request(id int64, n *corev3.Node, typeURL string, names int, nonce string, nack *rpcstatus.Status) error {
	if names > t.maxNames {
		return status.Errorf(codes.InvalidArgument, "xds: %d resource names in one request (limit %d)", names, t.maxNames)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.streams[id]
	if !ok {
		return status.Error(codes.Internal, "xds: request on an unknown stream")
	}
	if err := t.identify(st, n); err != nil {
		return err
	}
	ts, ok := st.types[typeURL]
	if !ok {
		if len(st.types) >= maxTypesPerStream {
			return status.Errorf(codes.ResourceExhausted, "xds: more than %d resource types on one stream", maxTypesPerStream)
		}
		ts = &typeState{}
		st.types[typeURL] = ts
	}
	// A request without a nonce subscribes; one whose nonce is not the last
	// sent for its type is stale (or made up): it acknowledges nothing.
	if nonce == "" || nonce != ts.SentNonce {
		return nil
	}
	if nack != nil {
		if nonce == ts.lastNackNonce {
			return nil
		}
		msg := nack.GetMessage()
		if len(msg) > maxNackMessage {
			msg = msg[:maxNackMessage] + "…"
		}
		ts.lastNackNonce = nonce
		ts.Nacks++
		ts.LastNack = &NackStatus{Version: ts.SentVersion, Nonce: nonce, Message: msg, Time: t.now()}
		t.metrics.nacks.WithLabelValues(typeName(typeURL)).Inc()
		t.log.Warn("proxy rejected configuration",
			zap.String("node", st.node.ID), zap.String("group", st.node.Group), zap.String("type", typeName(typeURL)),
			zap.String("version", ts.SentVersion), zap.String("nonce", nonce), zap.String("error", msg))
		return nil
	}
	if nonce != ts.AckedNonce {
		ts.AckedNonce, ts.AckedVersion = nonce, ts.SentVersion
		ts.Acks++
	}
	return nil
}

func (t *tracker) response(id int64, typeURL, version, nonce string) {
	t.metrics.pushes.WithLabelValues(typeName(typeURL)).Inc()
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.streams[id]
	if !ok {
		return
	}
	ts, ok := st.types[typeURL]
	if !ok {
		ts = &typeState{}
		st.types[typeURL] = ts
	}
	ts.SentVersion, ts.SentNonce = version, nonce
}

// checkFetch checks a unary Fetch request: a bounded name list and a node.
func (t *tracker) checkFetch(req *discoveryv3.DiscoveryRequest) error {
	if n := len(req.GetResourceNames()); n > t.maxNames {
		return status.Errorf(codes.InvalidArgument, "xds: %d resource names in one request (limit %d)", n, t.maxNames)
	}
	if _, err := classify(req.GetNode()); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return nil
}

// groupIdle reports whether no stream of the group has been open since before.
func (t *tracker) groupIdle(key string, before time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groups[key]
	if g == nil {
		return true
	}
	if g.streams > 0 || g.lastClosed.After(before) {
		return false
	}
	delete(t.groups, key)
	return true
}

func (t *tracker) groupStreams(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if g := t.groups[key]; g != nil {
		return g.streams
	}
	return 0
}

// nodes lists the identified streams, sorted by node id then stream id.
func (t *tracker) nodes() []NodeStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]NodeStatus, 0, len(t.streams))
	for id, st := range t.streams {
		if !st.known {
			continue
		}
		ns := NodeStatus{
			ID: st.node.ID, Stream: id, Kind: st.node.Proxy.Kind, Namespace: st.node.Proxy.Namespace,
			ClusterID: st.node.ClusterID, Group: st.node.Group, Protocol: "sotw", Service: st.service,
			ConnectedSince: st.since, Types: make(map[string]TypeStatus, len(st.types)),
		}
		if st.delta {
			ns.Protocol = "delta"
		}
		for typeURL, ts := range st.types {
			name := typeName(typeURL)
			if name == "other" {
				name = typeURL
			}
			c := ts.TypeStatus
			if c.LastNack != nil {
				n := *c.LastNack
				c.LastNack = &n
			}
			ns.Types[name] = c
		}
		out = append(out, ns)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Stream < out[j].Stream
	})
	return out
}
