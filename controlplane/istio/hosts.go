package istio

import (
	"net/netip"
	"strings"
)

// DomainSuffix is the cluster's DNS domain.
const DomainSuffix = "cluster.local"

// ResolveHost makes a host fully qualified in a namespace, as Istio does:
// "reviews" → "reviews.<ns>.svc.cluster.local", "reviews.ns" →
// "reviews.ns.svc.cluster.local"; hosts with two or more dots, wildcards and
// IP addresses are kept (lower-cased).
func ResolveHost(host, namespace string) string {
	h := strings.ToLower(strings.TrimSpace(host))
	if h == "" || strings.Contains(h, "*") {
		return h
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return h
	}
	switch strings.Count(h, ".") {
	case 0:
		return h + "." + namespace + ".svc." + DomainSuffix
	case 1:
		return h + ".svc." + DomainSuffix
	}
	return h
}

// hostMatches reports whether a wildcard pattern ("*.example.com", "*")
// covers a host. A non-wildcard pattern matches only itself.
func hostMatches(pattern, host string) bool {
	if pattern == "*" {
		return true
	}
	if strings.HasPrefix(pattern, "*") {
		return strings.HasSuffix(host, pattern[1:])
	}
	return pattern == host
}

// ClusterName is Istio's outbound cluster name.
func ClusterName(port uint32, subset, host string) string {
	return "outbound|" + uitoa(port) + "|" + subset + "|" + host
}

func uitoa(u uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			return string(b[i:])
		}
	}
}
