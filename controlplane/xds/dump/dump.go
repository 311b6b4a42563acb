// Package dump is an xDS client that shows what a node receives: it opens an
// ADS stream (state of the world or delta) as a given node, subscribes to
// clusters and listeners, then to the route configs, endpoints and secrets
// they refer to, acknowledges every response like Envoy, and returns the
// result as Envoy's admin ConfigDump.
package dump

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Node builds an xDS node with the metadata Rosen classifies proxies by:
// LABELS, NAMESPACE and, for a proxyless gRPC client, GENERATOR=grpc.
// MaxResponseSize bounds one xDS response the dump client accepts.
const MaxResponseSize = 256 << 20

func Node(id string, labels map[string]string, namespace string, proxyless bool) *corev3.Node {
	fields := map[string]*structpb.Value{}
	if len(labels) > 0 {
		l := make(map[string]*structpb.Value, len(labels))
		for k, v := range labels {
			l[k] = structpb.NewStringValue(v)
		}
		fields["LABELS"] = structpb.NewStructValue(&structpb.Struct{Fields: l})
	}
	if namespace != "" {
		fields["NAMESPACE"] = structpb.NewStringValue(namespace)
	}
	if proxyless {
		fields["GENERATOR"] = structpb.NewStringValue("grpc")
	}
	return &corev3.Node{Id: id, UserAgentName: "rosen-xds-dump", Metadata: &structpb.Struct{Fields: fields}}
}

// ErrIncomplete is wrapped by Dump's error when some referenced resources had
// not arrived before the timeout; the dump returned with it holds the rest.
var ErrIncomplete = errors.New("dump: incomplete")

// Dump connects to the xDS server at addr (plaintext) as node and returns
// what it is served.
func Dump(ctx context.Context, addr string, node *corev3.Node, delta bool, timeout time.Duration) (*adminv3.ConfigDump, error) {
	// A large mesh's proxyless listener set alone can exceed gRPC's 4 MiB
	// default; Envoy itself accepts much larger responses.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxResponseSize)))
	if err != nil {
		return nil, fmt.Errorf("dump: dial %s: %w", addr, err)
	}
	defer conn.Close()
	return DumpConn(ctx, conn, node, delta, timeout)
}

// DumpConn is Dump over an existing connection.
func DumpConn(ctx context.Context, conn grpc.ClientConnInterface, node *corev3.Node, delta bool, timeout time.Duration) (*adminv3.ConfigDump, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t, err := openTransport(ctx, discoveryv3.NewAggregatedDiscoveryServiceClient(conn), node, delta)
	if err != nil {
		return nil, err
	}
	c := newCollector(delta)
	err = c.run(ctx, t)
	return c.configDump(), err
}

// kinds in the order Envoy's config_dump lists them.
var kinds = []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType, resourcev3.SecretType}

type typeState struct {
	wildcard   bool
	subscribed map[string]bool // names asked for (not wildcard)
	started    bool
	received   bool
	last       *update
	got        map[string]entry
}

type entry struct {
	resource
	at time.Time
}

type collector struct {
	delta bool
	types map[string]*typeState
}

func newCollector(delta bool) *collector {
	c := &collector{delta: delta, types: map[string]*typeState{}}
	for _, k := range kinds {
		c.types[k] = &typeState{subscribed: map[string]bool{}, got: map[string]entry{}}
	}
	c.types[resourcev3.ClusterType].wildcard = true
	c.types[resourcev3.ListenerType].wildcard = true
	return c
}

func (c *collector) run(ctx context.Context, t transport) error {
	for _, k := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		if err := t.subscribe(k, nil, nil, nil); err != nil {
			return fmt.Errorf("dump: subscribe: %w", err)
		}
		c.types[k].started = true
	}
	updates := make(chan *update)
	errs := make(chan error, 1)
	go func() {
		for {
			u, err := t.recv()
			if err != nil {
				errs <- err
				return
			}
			select {
			case updates <- u:
			case <-ctx.Done():
				return
			}
		}
	}()
	for !c.complete() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ErrIncomplete, c.missing())
		case err := <-errs:
			if ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded {
				// The stream ended because the timeout did: both cases were
				// ready and select took this one, or the server enforced the
				// deadline (sent as grpc-timeout) a moment before our timer
				// fired. Say what is missing.
				return fmt.Errorf("%w: %s", ErrIncomplete, c.missing())
			}
			return fmt.Errorf("dump: stream: %w", err)
		case u := <-updates:
			if err := c.apply(u, t); err != nil {
				return err
			}
		}
	}
	return nil
}

// apply records a response, acknowledges it and subscribes to anything new
// that the listeners and clusters refer to.
func (c *collector) apply(u *update, t transport) error {
	st, ok := c.types[u.typeURL]
	if !ok {
		return fmt.Errorf("dump: server sent unrequested type %q", u.typeURL)
	}
	now := time.Now()
	if !c.delta && st.wildcard {
		// Listeners and clusters are full state in SotW.
		st.got = map[string]entry{}
	}
	for _, r := range u.res {
		st.got[r.name] = entry{r, now}
	}
	for _, name := range u.removed {
		delete(st.got, name)
	}
	st.received, st.last = true, u

	want := c.references()
	for _, k := range kinds {
		s := c.types[k]
		if s.wildcard {
			continue
		}
		var added []string
		for name := range want[k] {
			if !s.subscribed[name] {
				s.subscribed[name] = true
				added = append(added, name)
			}
		}
		sort.Strings(added)
		isAck := k == u.typeURL
		if len(added) == 0 && !isAck {
			continue
		}
		if len(s.subscribed) == 0 && !s.started && !isAck {
			continue
		}
		all := slices.Sorted(maps.Keys(s.subscribed))
		var ack *update
		if s.started {
			ack = s.last
		}
		if err := t.subscribe(k, all, added, ack); err != nil {
			return fmt.Errorf("dump: subscribe: %w", err)
		}
		s.started = true
	}
	if st.wildcard {
		if err := t.subscribe(u.typeURL, nil, nil, u); err != nil {
			return fmt.Errorf("dump: ack: %w", err)
		}
	}
	return nil
}

// references collects the names listeners and clusters refer to, by type.
func (c *collector) references() map[string]map[string]bool {
	routes, endpoints, secrets := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, e := range c.types[resourcev3.ListenerType].got {
		var l listenerv3.Listener
		if e.any.UnmarshalTo(&l) == nil {
			listenerRefs(&l, routes, secrets)
		}
	}
	for _, e := range c.types[resourcev3.ClusterType].got {
		var cl clusterv3.Cluster
		if e.any.UnmarshalTo(&cl) == nil {
			clusterRefs(&cl, endpoints, secrets)
		}
	}
	return map[string]map[string]bool{resourcev3.RouteType: routes, resourcev3.EndpointType: endpoints, resourcev3.SecretType: secrets}
}

func (c *collector) complete() bool { return c.missing() == "" }

// missing describes what has not arrived yet ("" when nothing).
func (c *collector) missing() string {
	var out []string
	for _, k := range kinds {
		st := c.types[k]
		if st.wildcard {
			if !st.received {
				out = append(out, shortType(k)+" (no response)")
			}
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(st.subscribed)) {
			if _, ok := st.got[name]; !ok {
				out = append(out, shortType(k)+" "+name)
			}
		}
	}
	return strings.Join(out, ", ")
}

func shortType(typeURL string) string { return typeURL[strings.LastIndexByte(typeURL, '.')+1:] }

func resourceName(a *anypb.Any) (string, error) {
	m, err := a.UnmarshalNew()
	if err != nil {
		return "", fmt.Errorf("dump: decode %s: %w", a.GetTypeUrl(), err)
	}
	if n, ok := m.(interface{ GetName() string }); ok {
		return n.GetName(), nil
	}
	if n, ok := m.(interface{ GetClusterName() string }); ok {
		return n.GetClusterName(), nil
	}
	return "", fmt.Errorf("dump: %s has no name", a.GetTypeUrl())
}

// JSON prints a ConfigDump as Envoy's admin endpoint does (multi-line, two
// spaces), with stable whitespace (protojson varies it on purpose).
func JSON(d *adminv3.ConfigDump) ([]byte, error) {
	raw, err := protojson.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
