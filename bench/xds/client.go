package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/structpb"
)

// Type indices of the four xDS types the client follows.
const (
	tLDS = iota
	tRDS
	tCDS
	tEDS
	tOther
	nTypes
)

var typeURLs = [nTypes]string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType, resourcev3.EndpointType, ""}
var typeNames = [nTypes]string{"LDS", "RDS", "CDS", "EDS", "other"}

func typeIndex(url string) int {
	for i := 0; i < tOther; i++ {
		if typeURLs[i] == url {
			return i
		}
	}
	return tOther
}

// fleetConfig says how many streams to open and how they present themselves.
type fleetConfig struct {
	addr    string // host:port of the xDS server (loopback)
	kind    string // kindGateway or kindProxyless
	delta   bool
	proxies int
	perConn int // streams per gRPC connection
}

// fleet is N ADS streams that behave like Envoy: wildcard LDS and CDS, then
// RDS and EDS for the names those reference; every response is ACKed.
type fleet struct {
	cfg     fleetConfig
	in      *interner
	conns   []*grpc.ClientConn
	streams []*stream
	wg      sync.WaitGroup

	probes atomic.Pointer[probes]

	responses [nTypes]atomic.Int64 // responses received per type
	resources [nTypes]atomic.Int64 // resources received per type
	bytes     atomic.Int64         // resource bytes received
	bad       atomic.Int64         // resources that did not parse
	lastResp  atomic.Int64         // UnixNano of the latest response received
	firstResp atomic.Int64         // UnixNano of the first response since it was last reset to 0

	start     time.Time
	syncedAt  []atomic.Int64 // per stream: ns from start to first full sync
	unsynced  atomic.Int64
	allSynced chan struct{}

	errMu    sync.Mutex
	errCount int
	firstErr error
}

func newFleet(cfg fleetConfig) *fleet {
	if cfg.perConn < 1 {
		cfg.perConn = 1
	}
	f := &fleet{cfg: cfg, in: newInterner(), syncedAt: make([]atomic.Int64, cfg.proxies), allSynced: make(chan struct{})}
	f.unsynced.Store(int64(cfg.proxies))
	return f
}

// nodeFor is the xDS node of stream i.
func (f *fleet) nodeFor(i int) *corev3.Node {
	if f.cfg.kind == kindProxyless {
		md, _ := structpb.NewStruct(map[string]any{"GENERATOR": "grpc", "NAMESPACE": benchNamespace})
		return &corev3.Node{
			Id:       fmt.Sprintf("sidecar~10.0.0.1~client-%d.%s~%s.svc.cluster.local", i, benchNamespace, benchNamespace),
			Metadata: md,
			Locality: &corev3.Locality{},
		}
	}
	md, _ := structpb.NewStruct(map[string]any{
		"LABELS":    map[string]any{"istio": "ingressgateway"},
		"NAMESPACE": "istio-system",
	})
	return &corev3.Node{
		Id:       fmt.Sprintf("router~10.0.0.1~gw-%d.istio-system~istio-system.svc.cluster.local", i),
		Metadata: md,
	}
}

// envoyWindow is Envoy's default HTTP/2 stream and connection window.
const envoyWindow = 256 << 20

// connect dials the connections and starts every stream; it returns at once.
func (f *fleet) connect(ctx context.Context) error {
	nconn := (f.cfg.proxies + f.cfg.perConn - 1) / f.cfg.perConn
	for c := 0; c < nconn; c++ {
		conn, err := grpc.NewClient(f.cfg.addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			// HTTP/2 flow-control windows as Envoy's defaults
			// (initial_stream_window_size and initial_connection_window_size,
			// 256 MiB): grpc-go's 64 KiB start would throttle the server
			// with window updates no Envoy sends.
			grpc.WithInitialWindowSize(envoyWindow),
			grpc.WithInitialConnWindowSize(envoyWindow),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))
		if err != nil {
			return fmt.Errorf("dial %s: %w", f.cfg.addr, err)
		}
		f.conns = append(f.conns, conn)
	}
	f.start = time.Now()
	for i := 0; i < f.cfg.proxies; i++ {
		s := &stream{idx: i, f: f, node: f.nodeFor(i)}
		for t := range s.sets {
			s.sets[t].Store(f.in.empty)
		}
		s.subs[0], s.subs[1] = emptyNames, emptyNames
		f.streams = append(f.streams, s)
		conn := f.conns[i/f.cfg.perConn]
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			var err error
			if f.cfg.delta {
				err = s.runDelta(ctx, conn)
			} else {
				err = s.runSotw(ctx, conn)
			}
			if err != nil && ctx.Err() == nil {
				f.fail(fmt.Errorf("stream %d: %w", i, err))
			}
		}()
	}
	return nil
}

func (f *fleet) fail(err error) {
	f.errMu.Lock()
	defer f.errMu.Unlock()
	f.errCount++
	if f.firstErr == nil {
		f.firstErr = err
	}
}

// errors returns how many streams failed and the first failure.
func (f *fleet) errors() (int, error) {
	f.errMu.Lock()
	defer f.errMu.Unlock()
	return f.errCount, f.firstErr
}

// close waits for the streams (whose context the caller cancelled) and
// closes the connections.
func (f *fleet) close() {
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.wg.Wait()
}

// counts is a copy of the per-type response counters.
func (f *fleet) counts() [nTypes]int64 {
	var out [nTypes]int64
	for i := range out {
		out[i] = f.responses[i].Load()
	}
	return out
}

// stream is one ADS stream and the little state Envoy would keep for it.
type stream struct {
	idx   int
	f     *fleet
	node  *corev3.Node
	sets  [nTypes]atomic.Pointer[rset] // read by the benchmark while the stream runs
	subs  [2]*nameList                 // what RDS (0) and EDS (1) are subscribed to
	ver   [nTypes]string
	nonce [nTypes]string
	got   [nTypes]bool
	sync  bool
}

// subIndex maps RDS/EDS to the subs slot, and the type that references it.
func subIndex(t int) (int, bool) {
	switch t {
	case tRDS:
		return 0, true
	case tEDS:
		return 1, true
	}
	return 0, false
}

// handle applies one response's resources to the stream's state and
// records the probe when the response satisfied it.
func (s *stream) handle(t int, url string, replace bool, ups []update, removed []string, now time.Time) {
	f := s.f
	f.responses[t].Add(1)
	f.lastResp.Store(now.UnixNano())
	f.firstResp.CompareAndSwap(0, now.UnixNano())
	f.resources[t].Add(int64(len(ups)))
	set := f.in.apply(url, s.sets[t].Load(), replace, ups, removed)
	s.sets[t].Store(set)
	s.got[t] = true
	if ps := f.probes.Load(); ps != nil {
		ps.record(s.idx, url, set, now)
	}
}

// checkSynced records the first time the stream holds everything it
// subscribed to.
func (s *stream) checkSynced(now time.Time) {
	if s.sync || !s.got[tLDS] || !s.got[tCDS] {
		return
	}
	if !s.sets[tRDS].Load().has(s.subs[0]) || !s.sets[tEDS].Load().has(s.subs[1]) {
		return
	}
	s.sync = true
	s.f.syncedAt[s.idx].Store(max(now.Sub(s.f.start).Nanoseconds(), 1))
	if s.f.unsynced.Add(-1) == 0 {
		close(s.f.allSynced)
	}
}

// wanted returns the names the referencing set asks for, for type t (RDS or EDS).
func (s *stream) wanted(t int) *nameList {
	if t == tRDS {
		return s.sets[tLDS].Load().refs
	}
	return s.sets[tCDS].Load().refs
}

func (s *stream) runSotw(ctx context.Context, conn *grpc.ClientConn) error {
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(&discoveryv3.DiscoveryRequest{Node: s.node, TypeUrl: resourcev3.ClusterType}); err != nil {
		return err
	}
	if err := st.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ListenerType}); err != nil {
		return err
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return recvErr(err)
		}
		t := typeIndex(resp.GetTypeUrl())
		ups := make([]update, 0, len(resp.GetResources()))
		var n int64
		for _, a := range resp.GetResources() {
			ups = append(ups, update{name: nameOf(a.GetValue()), bytes: a.GetValue()})
			n += int64(len(a.GetValue()))
		}
		s.f.bytes.Add(n)
		replace := t == tLDS || t == tCDS
		s.ver[t], s.nonce[t] = resp.GetVersionInfo(), resp.GetNonce()
		ack := &discoveryv3.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}
		if i, ok := subIndex(t); ok {
			ack.ResourceNames = s.subs[i].names
		}
		if err := st.Send(ack); err != nil {
			return err
		}
		now := time.Now()
		s.handle(t, resp.GetTypeUrl(), replace, ups, nil, now)
		for _, rt := range []int{tRDS, tEDS} {
			if (rt == tRDS && t != tLDS) || (rt == tEDS && t != tCDS) {
				continue
			}
			i, _ := subIndex(rt)
			if w := s.wanted(rt); w != s.subs[i] {
				s.subs[i] = w
				if err := st.Send(&discoveryv3.DiscoveryRequest{
					TypeUrl: typeURLs[rt], ResourceNames: w.names, VersionInfo: s.ver[rt], ResponseNonce: s.nonce[rt],
				}); err != nil {
					return err
				}
			}
		}
		s.checkSynced(now)
	}
}

func (s *stream) runDelta(ctx context.Context, conn *grpc.ClientConn) error {
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{Node: s.node, TypeUrl: resourcev3.ClusterType, ResourceNamesSubscribe: []string{"*"}}); err != nil {
		return err
	}
	if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResourceNamesSubscribe: []string{"*"}}); err != nil {
		return err
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return recvErr(err)
		}
		t := typeIndex(resp.GetTypeUrl())
		ups := make([]update, 0, len(resp.GetResources()))
		var n int64
		for _, r := range resp.GetResources() {
			b := r.GetResource().GetValue()
			name := r.GetName()
			if name == "" {
				name = nameOf(b)
			}
			ups = append(ups, update{name: name, bytes: b})
			n += int64(len(b))
		}
		s.f.bytes.Add(n)
		if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
			return err
		}
		now := time.Now()
		s.handle(t, resp.GetTypeUrl(), false, ups, resp.GetRemovedResources(), now)
		for _, rt := range []int{tRDS, tEDS} {
			if (rt == tRDS && t != tLDS) || (rt == tEDS && t != tCDS) {
				continue
			}
			i, _ := subIndex(rt)
			w := s.wanted(rt)
			if w == s.subs[i] {
				continue
			}
			added, removed := diff(s.subs[i], w)
			s.subs[i] = w
			if len(added) == 0 && len(removed) == 0 {
				continue
			}
			if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{
				TypeUrl: typeURLs[rt], ResourceNamesSubscribe: added, ResourceNamesUnsubscribe: removed,
			}); err != nil {
				return err
			}
		}
		s.checkSynced(now)
	}
}

// recvErr turns the end of a stream into nil when the client closed it.
func recvErr(err error) error {
	if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
		return nil
	}
	return err
}

// nameOf reads field 1 (the name of a Listener, Cluster and
// RouteConfiguration; the cluster_name of a ClusterLoadAssignment) without
// unmarshalling the whole resource.
func nameOf(b []byte) string {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return ""
			}
			return string(v)
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return ""
		}
		b = b[m:]
	}
	return ""
}
