package translate

import (
	"regexp"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// RouteOptions says for whom and on which port routes are built.
type RouteOptions struct {
	Kind ProxyKind
	// Port filters match entries that name a port (0: keep all).
	Port uint32
	// Policies gives the traffic policy of a cluster, for consistent-hash
	// route hash policies; nil means none.
	Policies func(cluster string) *networking.TrafficPolicy
	// Gateway is the key ("ns/name" or "mesh") the routes are built for, and
	// Namespace the VirtualService's: match entries listing gateways apply
	// only to those.
	Gateway   string
	Namespace string
}

// Routes converts one VirtualService HTTP route to Envoy routes: one per
// match entry that applies to the port (match entries are ORed), or one
// catch-all route when it has no match. All share the same action.
func Routes(in *model.HTTPRoute, opts RouteOptions) []*routev3.Route {
	spec := in.Spec
	if spec == nil {
		spec = &networking.HTTPRoute{}
	}
	matches := spec.GetMatch()
	if len(matches) == 0 {
		matches = []*networking.HTTPMatchRequest{nil}
	}
	var out []*routev3.Route
	for _, m := range matches {
		if m != nil && (!matchesPort(m, opts.Port) || !matchesGateway(m, opts)) {
			continue
		}
		out = append(out, buildRoute(in, spec, m, opts))
	}
	return out
}

func buildRoute(in *model.HTTPRoute, spec *networking.HTTPRoute, m *networking.HTTPMatchRequest, opts RouteOptions) *routev3.Route {
	r := &routev3.Route{Name: routeName(in.Name, m), Match: RouteMatch(m)}
	switch {
	case spec.GetRedirect() != nil:
		r.Action = &routev3.Route_Redirect{Redirect: Redirect(spec.GetRedirect())}
	case spec.GetDirectResponse() != nil:
		r.Action = &routev3.Route_DirectResponse{DirectResponse: DirectResponse(spec.GetDirectResponse())}
	default:
		r.Action = &routev3.Route_Route{Route: routeAction(in, spec, m, opts)}
	}
	ops := HeaderOperations(spec.GetHeaders().GetRequest())
	rsp := HeaderOperations(spec.GetHeaders().GetResponse())
	if len(in.Route) == 1 && in.Route[0].Headers != nil {
		// A single destination's headers apply to the whole route (Istio).
		d := in.Route[0].Headers
		dreq, drsp := HeaderOperations(d.GetRequest()), HeaderOperations(d.GetResponse())
		ops.Add, ops.Remove = append(ops.Add, dreq.Add...), append(ops.Remove, dreq.Remove...)
		rsp.Add, rsp.Remove = append(rsp.Add, drsp.Add...), append(rsp.Remove, drsp.Remove...)
	}
	r.RequestHeadersToAdd, r.RequestHeadersToRemove = ops.Add, ops.Remove
	r.ResponseHeadersToAdd, r.ResponseHeadersToRemove = rsp.Add, rsp.Remove
	if f := Fault(spec.GetFault()); f != nil {
		setFilterConfig(r, FaultFilterName, f)
	}
	if opts.Kind != Proxyless {
		if c := Cors(spec.GetCorsPolicy()); c != nil {
			setFilterConfig(r, CorsFilterName, c)
		}
	}
	return r
}

func routeName(name string, m *networking.HTTPMatchRequest) string {
	if name != "" && m.GetName() != "" {
		return name + "." + m.GetName()
	}
	return name
}

func setFilterConfig(r *routev3.Route, filter string, cfg proto.Message) {
	if r.TypedPerFilterConfig == nil {
		r.TypedPerFilterConfig = map[string]*anypb.Any{}
	}
	r.TypedPerFilterConfig[filter] = mustAny(cfg)
}

func routeAction(in *model.HTTPRoute, spec *networking.HTTPRoute, m *networking.HTTPMatchRequest, opts RouteOptions) *routev3.RouteAction {
	a := &routev3.RouteAction{Timeout: durationpb.New(0), RetryPolicy: RetryPolicy(spec.GetRetries())}
	if t := spec.GetTimeout(); t != nil {
		a.Timeout = durationpb.New(t.AsDuration())
		if opts.Kind == Proxyless {
			a.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{
				MaxStreamDuration:    durationpb.New(t.AsDuration()),
				GrpcTimeoutHeaderMax: durationpb.New(t.AsDuration()),
			}
		}
	}
	switch len(in.Route) {
	case 0:
	case 1:
		a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: in.Route[0].Cluster}
	default:
		a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: WeightedClusters(in.Route)}
	}
	if rw := spec.GetRewrite(); rw != nil {
		applyRewrite(a, rw, m)
	}
	for _, mr := range in.Mirrors {
		a.RequestMirrorPolicies = append(a.RequestMirrorPolicies, &routev3.RouteAction_RequestMirrorPolicy{
			Cluster: mr.Destination.Cluster,
			RuntimeFraction: &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{
				Numerator: uint32(mr.Percent*10000 + 0.5), Denominator: typev3.FractionalPercent_MILLION,
			}},
		})
	}
	if len(in.Route) > 0 && opts.Policies != nil {
		a.HashPolicy = HashPolicy(opts.Policies(in.Route[0].Cluster))
	}
	return a
}

// WeightedClusters splits traffic by the given weights (0 means 100 for a
// sole destination, as the model documents); per-destination headers stay
// on each weighted cluster.
func WeightedClusters(dests []model.Destination) *routev3.WeightedCluster {
	wc := &routev3.WeightedCluster{}
	for _, d := range dests {
		c := &routev3.WeightedCluster_ClusterWeight{Name: d.Cluster, Weight: wrapperspb.UInt32(d.Weight)}
		if d.Headers != nil {
			req, rsp := HeaderOperations(d.Headers.GetRequest()), HeaderOperations(d.Headers.GetResponse())
			c.RequestHeadersToAdd, c.RequestHeadersToRemove = req.Add, req.Remove
			c.ResponseHeadersToAdd, c.ResponseHeadersToRemove = rsp.Add, rsp.Remove
		}
		wc.Clusters = append(wc.Clusters, c)
	}
	return wc
}

// applyRewrite sets the path and authority rewrites. A uri rewrite after a
// prefix match is a prefix_rewrite; after an exact or regex match the whole
// path is replaced with regex_rewrite, as Istio does.
func applyRewrite(a *routev3.RouteAction, rw *networking.HTTPRewrite, m *networking.HTTPMatchRequest) {
	if rw.GetAuthority() != "" {
		a.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.GetAuthority()}
	}
	if rr := rw.GetUriRegexRewrite(); rr != nil {
		a.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: regexMatcher(rr.GetMatch()), Substitution: rr.GetRewrite()}
		return
	}
	if rw.GetUri() == "" {
		return
	}
	switch u := m.GetUri().GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		a.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{
			Pattern: regexMatcher("^" + regexp.QuoteMeta(u.Exact) + "$"), Substitution: rw.GetUri()}
	case *networking.StringMatch_Regex:
		a.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{
			Pattern: regexMatcher("^(?:" + u.Regex + ")$"), Substitution: rw.GetUri()}
	default:
		a.PrefixRewrite = rw.GetUri()
	}
}

// Redirect converts an Istio redirect. Code 0 → 301 (Envoy's default).
func Redirect(in *networking.HTTPRedirect) *routev3.RedirectAction {
	out := &routev3.RedirectAction{HostRedirect: in.GetAuthority()}
	if in.GetUri() != "" {
		out.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: in.GetUri()}
	}
	if in.GetScheme() != "" {
		out.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: in.GetScheme()}
	}
	if p, ok := in.GetRedirectPort().(*networking.HTTPRedirect_Port); ok {
		out.PortRedirect = p.Port
	}
	switch in.GetRedirectCode() {
	case 302:
		out.ResponseCode = routev3.RedirectAction_FOUND
	case 303:
		out.ResponseCode = routev3.RedirectAction_SEE_OTHER
	case 307:
		out.ResponseCode = routev3.RedirectAction_TEMPORARY_REDIRECT
	case 308:
		out.ResponseCode = routev3.RedirectAction_PERMANENT_REDIRECT
	default:
		out.ResponseCode = routev3.RedirectAction_MOVED_PERMANENTLY
	}
	return out
}

// DirectResponse converts an Istio directResponse.
func DirectResponse(in *networking.HTTPDirectResponse) *routev3.DirectResponseAction {
	out := &routev3.DirectResponseAction{Status: in.GetStatus()}
	switch b := in.GetBody().GetSpecifier().(type) {
	case *networking.HTTPBody_String_:
		out.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: b.String_}}
	case *networking.HTTPBody_Bytes:
		out.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b.Bytes}}
	}
	return out
}

// notFoundRoute is the catch-all 404 of a blackhole virtual host.
func notFoundRoute() *routev3.Route {
	return &routev3.Route{
		Name:   "default",
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 404}},
	}
}

// defaultRoute sends everything to cluster, with Istio's default retries.
func defaultRoute(cluster string, hash []*routev3.RouteAction_HashPolicy) *routev3.Route {
	return &routev3.Route{
		Name:  "default",
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
			Timeout:          durationpb.New(0),
			RetryPolicy:      RetryPolicy(nil),
			HashPolicy:       hash,
		}},
	}
}

// matchesGateway applies a match entry's own gateways list ("name" is
// relative to the VirtualService's namespace).
func matchesGateway(m *networking.HTTPMatchRequest, opts RouteOptions) bool {
	if len(m.GetGateways()) == 0 || opts.Gateway == "" {
		return true
	}
	for _, g := range m.GetGateways() {
		if g == opts.Gateway || (g != model.MeshGateway && opts.Namespace+"/"+g == opts.Gateway) {
			return true
		}
	}
	return false
}
