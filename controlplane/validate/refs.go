package validate

import (
	"fmt"
	"math"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/rosenmesh/rosen/controlplane/translate"
)

// MaxNameLength bounds resource names. Envoy sets no hard limit since
// --max-obj-name-len was removed, but names become stat names and xDS
// resource names; 4096 bytes keeps them well within every proxy's buffers.
const MaxNameLength = 4096

func (c *checker) name(kind, name string) {
	switch {
	case name == "":
		c.fail(kind, name, "name", "name is empty")
	case len(name) > MaxNameLength:
		c.fail(kind, name, "name", "name is %d bytes, longer than %d", len(name), MaxNameLength)
	}
}

// listeners: every RDS name exists; filter chains do not overlap.
func (c *checker) listeners() {
	routes := map[string]bool{}
	for _, r := range c.res.Routes {
		routes[r.GetName()] = true
	}
	seen := map[string]bool{}
	for _, l := range c.res.Listeners {
		c.name(translate.KindListener, l.GetName())
		if seen[l.GetName()] {
			c.fail(translate.KindListener, l.GetName(), "name", "duplicate listener name")
		}
		seen[l.GetName()] = true
		if a := l.GetApiListener().GetApiListener(); a != nil {
			c.hcmRoutes(l.GetName(), "api_listener.api_listener", a, routes)
		}
		for i, fc := range l.GetFilterChains() {
			for j, f := range fc.GetFilters() {
				if a := f.GetTypedConfig(); a != nil {
					c.hcmRoutes(l.GetName(), fmt.Sprintf("filter_chains[%d].filters[%d].typed_config", i, j), a, routes)
				}
			}
		}
		c.overlap(l)
	}
}

func (c *checker) hcmRoutes(listener, path string, a *anypb.Any, routes map[string]bool) {
	if !a.MessageIs(&hcmv3.HttpConnectionManager{}) {
		return
	}
	m, err := c.unpack(a) // unpacked already by the walk
	if err != nil {
		return // reported by the walk
	}
	h := m.(*hcmv3.HttpConnectionManager)
	if rds := h.GetRds(); rds != nil {
		if !routes[rds.GetRouteConfigName()] {
			c.fail(translate.KindListener, listener, path+".rds.route_config_name",
				"route configuration %q does not exist", rds.GetRouteConfigName())
		}
		if rds.GetConfigSource().GetAds() == nil && rds.GetConfigSource().GetSelf() == nil {
			c.fail(translate.KindListener, listener, path+".rds.config_source", "RDS must come over ads or self")
		}
	}
}

// overlap reports filter chains with identical match criteria: Envoy rejects
// a listener where two chains match the same server name (or both none)
// with otherwise equal criteria.
func (c *checker) overlap(l *listenerv3.Listener) {
	seen := map[string]int{}
	for i, fc := range l.GetFilterChains() {
		m := fc.GetFilterChainMatch()
		base := fmt.Sprintf("port=%d|tp=%s|alpn=%s|dst=%v|src=%v|srcports=%v|type=%v",
			m.GetDestinationPort().GetValue(), m.GetTransportProtocol(), strings.Join(sortedCopy(m.GetApplicationProtocols()), ","),
			m.GetPrefixRanges(), m.GetSourcePrefixRanges(), m.GetSourcePorts(), m.GetSourceType())
		names := m.GetServerNames()
		if len(names) == 0 {
			names = []string{""}
		}
		for _, sn := range names {
			key := base + "|sni=" + strings.ToLower(sn)
			if j, ok := seen[key]; ok {
				c.fail(translate.KindListener, l.GetName(), fmt.Sprintf("filter_chains[%d].filter_chain_match", i),
					"matches the same connections as filter_chains[%d] (server name %q)", j, sn)
				continue
			}
			seen[key] = i
		}
	}
}

// routes: unique domains per config, clusters exist, weights sum above 0.
func (c *checker) routes() {
	clusters := map[string]bool{}
	for _, cl := range c.res.Clusters {
		clusters[cl.GetName()] = true
	}
	seenRC := map[string]bool{}
	for _, rc := range c.res.Routes {
		name := rc.GetName()
		c.name(translate.KindRoute, name)
		if seenRC[name] {
			c.fail(translate.KindRoute, name, "name", "duplicate route configuration name")
		}
		seenRC[name] = true
		domains := map[string][2]int{} // lower-cased domain → where it was first seen
		domainField := func(at [2]int) string { return fmt.Sprintf("virtual_hosts[%d].domains[%d]", at[0], at[1]) }
		for i, vh := range rc.GetVirtualHosts() {
			for j, d := range vh.GetDomains() {
				if prev, ok := domains[strings.ToLower(d)]; ok {
					c.fail(translate.KindRoute, name, domainField([2]int{i, j}), "domain %q is already used by %s", d, domainField(prev))
					continue
				}
				domains[strings.ToLower(d)] = [2]int{i, j}
			}
			for j, r := range vh.GetRoutes() {
				c.routeClusters(name, i, j, r, clusters)
			}
		}
	}
}

// routeClusters checks route j of virtual host i; its field path is built
// only for a failure.
func (c *checker) routeClusters(rc string, i, j int, r *routev3.Route, clusters map[string]bool) {
	a := r.GetRoute()
	if a == nil {
		return
	}
	path := func() string { return fmt.Sprintf("virtual_hosts[%d].routes[%d]", i, j) }
	missing := func(field, cluster string) {
		if !clusters[cluster] {
			c.fail(translate.KindRoute, rc, path()+".route."+field, "cluster %q does not exist", cluster)
		}
	}
	if cl := a.GetCluster(); cl != "" {
		missing("cluster", cl)
	}
	if wc := a.GetWeightedClusters(); wc != nil {
		var total uint64
		for k, w := range wc.GetClusters() {
			if !clusters[w.GetName()] {
				missing(fmt.Sprintf("weighted_clusters.clusters[%d].name", k), w.GetName())
			}
			total += uint64(w.GetWeight().GetValue())
		}
		switch {
		case total == 0:
			c.fail(translate.KindRoute, rc, path()+".route.weighted_clusters", "weights sum to 0")
		case total > math.MaxUint32:
			c.fail(translate.KindRoute, rc, path()+".route.weighted_clusters", "weights sum to %d, above %d", total, uint64(math.MaxUint32))
		}
	}
	for k, m := range a.GetRequestMirrorPolicies() {
		if !clusters[m.GetCluster()] {
			missing(fmt.Sprintf("request_mirror_policies[%d].cluster", k), m.GetCluster())
		}
	}
}

// clusters: names, and every EDS cluster has a load assignment.
func (c *checker) clusters() {
	cla := map[string]bool{}
	for _, e := range c.res.Endpoints {
		cla[e.GetClusterName()] = true
	}
	seen := map[string]bool{}
	for _, cl := range c.res.Clusters {
		c.name(translate.KindCluster, cl.GetName())
		if seen[cl.GetName()] {
			c.fail(translate.KindCluster, cl.GetName(), "name", "duplicate cluster name")
		}
		seen[cl.GetName()] = true
		if cl.GetType() != clusterv3.Cluster_EDS {
			continue
		}
		svc := cl.GetEdsClusterConfig().GetServiceName()
		if svc == "" {
			svc = cl.GetName()
		}
		if !cla[svc] {
			c.fail(translate.KindCluster, cl.GetName(), "eds_cluster_config.service_name", "no ClusterLoadAssignment %q", svc)
		}
	}
}

// endpoints: every locality is set and non-empty (grpc-go's rules on top of
// Envoy's; ValidateAll already bounds the weights).
func (c *checker) endpoints() {
	for _, e := range c.res.Endpoints {
		name := e.GetClusterName()
		for i, lle := range e.GetEndpoints() {
			path := fmt.Sprintf("endpoints[%d]", i)
			if lle.GetLocality() == nil {
				c.fail(translate.KindEndpoint, name, path+".locality", "locality is not set (grpc-go rejects it)")
			}
			if len(lle.GetLbEndpoints()) == 0 {
				c.fail(translate.KindEndpoint, name, path+".lb_endpoints", "locality has no endpoints")
			}
		}
	}
}

func sortedCopy(in []string) []string {
	m := map[string]bool{}
	for _, s := range in {
		m[s] = true
	}
	return sortedSet(m)
}
