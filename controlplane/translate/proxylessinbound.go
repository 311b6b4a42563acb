package translate

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	security "istio.io/api/security/v1beta1"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// InboundListenerPrefix is the server listener resource name template of
// proxyless gRPC servers without its "%s" (Istio's, so the same bootstrap
// works against istiod and Rosen): grpc-go's xds.NewGRPCServer asks for
// InboundListenerPrefix + the listening "ip:port".
const InboundListenerPrefix = "xds.istio.io/grpc/lds/inbound/"

// InboundListenerName is the listener a proxyless gRPC server listening on
// host:port asks for ("[::]:port" for an IPv6 host, as net.Addr prints it).
func InboundListenerName(host string, port uint32) string {
	return InboundListenerPrefix + net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
}

// inboundHosts are the addresses a server is expected to listen on: the
// wildcards, which is what ":port" and "0.0.0.0:port" give (the Listener's
// address must equal the listening address or grpc-go refuses it).
var inboundHosts = []string{"0.0.0.0", "::"}

// ParsePodPorts reads Istio's POD_PORTS node metadata (a JSON list of
// container ports, [{"name":"grpc","containerPort":7070,"protocol":"TCP"}])
// into sorted, distinct TCP port numbers. It is the set of inbound ports of a
// proxyless gRPC server.
func ParsePodPorts(s string) ([]uint32, error) {
	var ports []struct {
		Name          string `json:"name"`
		ContainerPort int64  `json:"containerPort"`
		Protocol      string `json:"protocol"`
	}
	if err := json.Unmarshal([]byte(s), &ports); err != nil {
		return nil, fmt.Errorf("POD_PORTS: want a JSON list of {name, containerPort, protocol}: %w", err)
	}
	seen := map[uint32]bool{}
	var out []uint32
	for i, p := range ports {
		if p.Protocol != "" && !strings.EqualFold(p.Protocol, "TCP") {
			continue
		}
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return nil, fmt.Errorf("POD_PORTS[%d].containerPort: %d is not a port (1-65535)", i, p.ContainerPort)
		}
		if n := uint32(p.ContainerPort); !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// buildProxylessInbound gives a proxyless gRPC server (a proxy with
// InboundPorts) one server-side Listener per port and wildcard address,
// named as grpc-go asks for it. Each carries an HTTP connection manager with
// an inline route config (every RPC to a non-forwarding route, as A36 wants)
// and the RBAC of the AuthorizationPolicies that select the proxy: DENY
// (CUSTOM rules too, see below), then ALLOW, then the router.
//
// grpc-go's RBAC (gRFC A41) enforces paths (the full method name), hosts
// (:authority), headers, ports, source IPs and methods (always POST). It has
// no JWT: request principals, audiences, presenters and claims are metadata
// matchers that never match there, so an ALLOW rule needing a token never
// allows and a DENY rule on the absence of one always denies. CUSTOM
// (ext_authz) cannot be called from grpc-go, so the requests a CUSTOM policy
// would send to Rosen are denied instead of let through unchecked. AUDIT is
// ignored, as Envoy ignores it without an audit logger.
func buildProxylessInbound(m *model.Mesh, p Proxy, r *Resources) error {
	if len(p.InboundPorts) == 0 {
		return nil
	}
	deny, allow, src, err := inboundPolicies(m, p)
	if err != nil {
		return err
	}
	var filters []*hcmv3.HttpFilter
	if f := RBACFilter(model.ActionDeny, deny); f != nil {
		filters = append(filters, f)
	}
	if f := RBACFilter(model.ActionAllow, allow); f != nil {
		filters = append(filters, f)
	}
	filters = append(filters, httpFilter(RouterFilterName, mustAny(&routerv3.Router{})))
	for _, port := range p.InboundPorts {
		rc := inboundRouteConfig(port)
		hcm := &hcmv3.HttpConnectionManager{
			StatPrefix:     rc.Name,
			RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc},
			HttpFilters:    filters,
		}
		for _, host := range inboundHosts {
			name := InboundListenerName(host, port)
			r.Listeners = append(r.Listeners, &listenerv3.Listener{
				Name: name,
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
				}}},
				FilterChains: []*listenerv3.FilterChain{{Name: rc.Name, Filters: []*listenerv3.Filter{hcmFilter(hcm)}}},
			})
			r.origin(KindListener, name, src)
		}
	}
	return nil
}

// inboundRouteConfig sends every RPC on the port to the server itself.
func inboundRouteConfig(port uint32) *routev3.RouteConfiguration {
	name := "inbound|" + strconv.FormatUint(uint64(port), 10) + "||"
	return &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    name,
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Name:   "default",
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_NonForwardingAction{NonForwardingAction: &routev3.NonForwardingAction{}},
			}},
		}},
	}
}

// inboundPolicies splits the AuthorizationPolicies selecting p into the DENY
// filter's (DENY and CUSTOM) and the ALLOW filter's; src names the first
// (the listener's origin), or the proxy's namespace when none applies. It
// rejects what grpc-go would NACK: header conditions on grpc-* or :scheme
// (A41), so the error names the policy instead of a NACK naming a listener.
func inboundPolicies(m *model.Mesh, p Proxy) (deny, allow []*model.AuthorizationPolicy, src model.Source, err error) {
	src = model.Source{Kind: "Proxy", Namespace: p.Namespace, Name: "proxyless gRPC server"}
	if m.Security == nil {
		return nil, nil, src, nil
	}
	var errs model.Errors
	first := true
	for _, ap := range m.Security.AuthorizationPolicies {
		if !selects(ap.Workloads, p) {
			continue
		}
		switch ap.Action {
		case model.ActionDeny, model.ActionCustom:
			deny = append(deny, ap)
		case model.ActionAllow:
			allow = append(allow, ap)
		default:
			continue
		}
		if first {
			src, first = ap.Source, false
		}
		errs = append(errs, grpcHeaderErrors(ap)...)
	}
	return deny, allow, src, errs.Err()
}

// grpcHeaderErrors reports request.headers conditions that grpc-go refuses.
func grpcHeaderErrors(ap *model.AuthorizationPolicy) model.Errors {
	var errs model.Errors
	for i, rule := range ap.Rules {
		for j, c := range rule.GetWhen() {
			if h, ok := headerKey(c); ok && (h == ":scheme" || strings.HasPrefix(h, "grpc-")) {
				errs = append(errs, model.Errorf(ap.Source, fmt.Sprintf("spec.rules[%d].when[%d].key", i, j),
					"%s: proxyless gRPC servers select this policy, and gRPC's RBAC refuses matchers on grpc-* headers and :scheme (gRFC A41)", c.GetKey()))
			}
		}
	}
	return errs
}

func headerKey(c *security.Condition) (string, bool) {
	k := c.GetKey()
	if !strings.HasPrefix(k, "request.headers[") || !strings.HasSuffix(k, "]") {
		return "", false
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(k, "request.headers["), "]")), true
}
