package istio

import (
	"fmt"
	"net/netip"
	"regexp"
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

// checkHostName applies Istio's host rules (ValidateWildcardDomain): at most
// 255 bytes, DNS-1123 labels of at most 63 bytes, and a wildcard only in the
// first label ("*", "*.example.com", "*example.com"). host is lower-cased.
func checkHostName(host string) error {
	if host == "*" {
		return nil
	}
	if len(host) > 255 {
		return fmt.Errorf("host %q is longer than 255 characters", host[:40]+"…")
	}
	first, rest, hasRest := strings.Cut(host, ".")
	if !wildcardLabel.MatchString(first) || len(first) > 63 {
		return fmt.Errorf("host %q: label %q is not a DNS-1123 label (a wildcard may only prefix the first label)", host, first)
	}
	if !hasRest {
		return nil
	}
	for _, l := range strings.Split(rest, ".") {
		if len(l) > 63 || !dnsLabel.MatchString(l) {
			return fmt.Errorf("host %q: label %q is not a DNS-1123 label (lower-case letters, digits and '-', 1-63 characters)", host, l)
		}
	}
	return nil
}

var (
	dnsLabel      = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	wildcardLabel = regexp.MustCompile(`^(\*|(\*|\*-)?[a-z0-9]([-a-z0-9]*[a-z0-9])?)$`)
)
