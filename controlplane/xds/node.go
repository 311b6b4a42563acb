package xds

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/rosenmesh/rosen/controlplane/translate"
)

// Node metadata keys, as Istio's bootstraps send them.
const (
	MetaLabels    = "LABELS"
	MetaNamespace = "NAMESPACE"
	MetaClusterID = "CLUSTER_ID"
	MetaGenerator = "GENERATOR"
	// MetaPodPorts is Istio's POD_PORTS: a proxyless client that sends it is
	// also a gRPC server on those ports (server-side xDS with RBAC).
	MetaPodPorts = "POD_PORTS"
	// GeneratorGRPC is the GENERATOR value of proxyless gRPC clients.
	GeneratorGRPC = "grpc"
)

// errNoNode is returned for a stream whose first request carries no node id.
var errNoNode = errors.New("xds: the first request of a stream must carry a node with an id")

// nodeInfo is what the server knows about one xDS client.
type nodeInfo struct {
	ID        string
	ClusterID string
	Proxy     translate.Proxy
	// Group is the key of the proxy group: every proxy of a group receives
	// the same configuration.
	Group string
}

// classify reads a proxy's kind, namespace and labels from its xDS node:
// "router~ip~pod.ns~ns.svc.cluster.local" is a gateway, "sidecar~…" a sidecar;
// metadata GENERATOR=grpc or an id without '~' is a proxyless gRPC client.
func classify(n *corev3.Node) (nodeInfo, error) {
	if n.GetId() == "" {
		return nodeInfo{}, errNoNode
	}
	fields := n.GetMetadata().GetFields()
	info := nodeInfo{ID: n.GetId(), ClusterID: stringField(fields, MetaClusterID)}
	parts := strings.Split(n.GetId(), "~")
	if stringField(fields, MetaGenerator) == GeneratorGRPC || len(parts) == 1 {
		info.Proxy = translate.Proxy{Kind: translate.Proxyless}
		info.Group = string(translate.Proxyless)
		return proxylessServer(info, n, fields, parts)
	}
	kind := translate.ProxyKind(parts[0])
	if kind != translate.Gateway && kind != translate.Sidecar {
		return nodeInfo{}, fmt.Errorf("xds: node id %q: kind %q is neither %q nor %q (or set metadata %s=%s for a proxyless client)",
			n.GetId(), parts[0], translate.Gateway, translate.Sidecar, MetaGenerator, GeneratorGRPC)
	}
	ns := stringField(fields, MetaNamespace)
	if ns == "" {
		ns = namespaceFromID(parts)
	}
	if ns == "" {
		return nodeInfo{}, fmt.Errorf("xds: node id %q: no namespace (want id kind~ip~pod.namespace~namespace.svc.cluster.local or metadata %s)", n.GetId(), MetaNamespace)
	}
	info.Proxy = translate.Proxy{Kind: kind, Namespace: ns}
	if kind == translate.Sidecar {
		info.Group = string(kind) + "/" + ns
		return info, nil
	}
	info.Proxy.Labels = labels(fields[MetaLabels])
	if err := checkLabels(info.Proxy.Labels); err != nil {
		return nodeInfo{}, fmt.Errorf("xds: node id %q: %w", truncateID(n.GetId()), err)
	}
	info.Group = string(kind) + "/" + ns + "/" + canonicalLabels(info.Proxy.Labels)
	return info, nil
}

// maxInboundPorts bounds the TCP ports of a proxyless gRPC server. Each is
// two listeners translated and held for the node's group: 65,535 ports (a
// 1.5 MB POD_PORTS) made 131,070 listeners, ~300 MB and seconds of CPU per
// group on every update, from one request.
const maxInboundPorts = 100

// proxylessServer makes a proxyless node that sends POD_PORTS a gRPC server:
// its namespace and labels select AuthorizationPolicies, so they (and the
// ports) join the group key. Plain proxyless clients keep the one shared group.
func proxylessServer(info nodeInfo, n *corev3.Node, fields map[string]*structpb.Value, parts []string) (nodeInfo, error) {
	pp := stringField(fields, MetaPodPorts)
	if pp == "" {
		return info, nil
	}
	ports, err := translate.ParsePodPorts(pp)
	if err != nil {
		return nodeInfo{}, fmt.Errorf("xds: node id %q: metadata %w", n.GetId(), err)
	}
	if len(ports) > maxInboundPorts {
		return nodeInfo{}, fmt.Errorf("xds: node id %q: metadata POD_PORTS: %d TCP ports (limit %d)", truncateID(n.GetId()), len(ports), maxInboundPorts)
	}
	ns := stringField(fields, MetaNamespace)
	if ns == "" {
		ns = namespaceFromID(parts)
	}
	if ns == "" || len(ports) == 0 {
		return nodeInfo{}, fmt.Errorf("xds: node id %q: a gRPC server (metadata %s) needs metadata %s and at least one TCP port", n.GetId(), MetaPodPorts, MetaNamespace)
	}
	info.Proxy.Namespace, info.Proxy.Labels, info.Proxy.InboundPorts = ns, labels(fields[MetaLabels]), ports
	if err := checkLabels(info.Proxy.Labels); err != nil {
		return nodeInfo{}, fmt.Errorf("xds: node id %q: %w", truncateID(n.GetId()), err)
	}
	info.Group += "/" + ns + "/" + canonicalLabels(info.Proxy.Labels) + "/" + fmt.Sprint(ports)
	return info, nil
}

// namespaceFromID takes the namespace from "pod.ns" (third field), else from
// the DNS domain "ns.svc.cluster.local" (fourth field).
func namespaceFromID(parts []string) string {
	if len(parts) > 2 {
		if i := strings.LastIndexByte(parts[2], '.'); i >= 0 && i < len(parts[2])-1 {
			return parts[2][i+1:]
		}
	}
	if len(parts) > 3 {
		if ns, _, _ := strings.Cut(parts[3], "."); ns != "" {
			return ns
		}
	}
	return ""
}

func stringField(fields map[string]*structpb.Value, key string) string {
	return fields[key].GetStringValue()
}

// Bounds on a node's LABELS. A label set is part of its group's key, held
// (about three times) for the group's life and logged when the group is
// created; up to MaxGroups groups exist, so without a bound 1,000 nodes
// with 4 MB of made-up labels each could hold ~12 GB. Kubernetes allows 63
// characters per value and 317 per key; these leave room for non-Kubernetes
// workloads.
const (
	maxLabels      = 256
	maxLabelKey    = 317
	maxLabelValue  = 1024
	maxLabelsBytes = 64 << 10
)

// checkLabels refuses a label set beyond those bounds.
func checkLabels(l map[string]string) error {
	if len(l) > maxLabels {
		return fmt.Errorf("metadata LABELS: %d labels (limit %d)", len(l), maxLabels)
	}
	total := 0
	for k, v := range l {
		if len(k) > maxLabelKey || len(v) > maxLabelValue {
			return fmt.Errorf("metadata LABELS: label %q is longer than %d bytes (key) or %d (value)", truncateID(k), maxLabelKey, maxLabelValue)
		}
		total += len(k) + len(v)
	}
	if total > maxLabelsBytes {
		return fmt.Errorf("metadata LABELS: %d bytes (limit %d)", total, maxLabelsBytes)
	}
	return nil
}

// labels reads the LABELS struct; non-string values are written as Istio
// would see them after a YAML round trip (numbers and booleans as text).
func labels(v *structpb.Value) map[string]string {
	fields := v.GetStructValue().GetFields()
	if len(fields) == 0 {
		return map[string]string{}
	}
	out := make(map[string]string, len(fields))
	for k, f := range fields {
		switch x := f.GetKind().(type) {
		case *structpb.Value_StringValue:
			out[k] = x.StringValue
		case *structpb.Value_NumberValue:
			out[k] = strconv.FormatFloat(x.NumberValue, 'f', -1, 64)
		case *structpb.Value_BoolValue:
			out[k] = strconv.FormatBool(x.BoolValue)
		}
	}
	return out
}

// canonicalLabels is a stable, unambiguous text form of a label set.
func canonicalLabels(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(k))
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l[k]))
	}
	return b.String()
}
