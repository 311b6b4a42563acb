package translate

import (
	"fmt"
	"strconv"
	"strings"
)

// ClusterName is Istio's outbound cluster name: outbound|port|subset|host.
func ClusterName(host string, port uint32, subset string) string {
	return "outbound|" + strconv.FormatUint(uint64(port), 10) + "|" + subset + "|" + host
}

// ParseClusterName splits an outbound cluster name; ok is false for other names.
func ParseClusterName(name string) (host string, port uint32, subset string, ok bool) {
	parts := strings.Split(name, "|")
	if len(parts) != 4 || parts[0] != "outbound" {
		return "", 0, "", false
	}
	p, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		return "", 0, "", false
	}
	return parts[3], uint32(p), parts[2], true
}

// ListenerName is the gateway/sidecar listener name 0.0.0.0_<port>.
func ListenerName(port uint32) string { return fmt.Sprintf("0.0.0.0_%d", port) }

// HostPort is "host:port", the proxyless listener and route config name.
func HostPort(host string, port uint32) string {
	return host + ":" + strconv.FormatUint(uint64(port), 10)
}

// HostMatches reports whether a concrete or wildcard host a falls within the
// (possibly wildcard) host pattern b, or b within a: Istio binds a
// VirtualService host to a server host when either covers the other.
func HostMatches(a, b string) bool {
	return hostCovers(a, b) || hostCovers(b, a)
}

// hostCovers reports whether pattern p covers host h ("*" covers everything,
// "*.example.com" covers "a.example.com" and "*.a.example.com").
func hostCovers(p, h string) bool {
	p, h = strings.ToLower(p), strings.ToLower(h)
	if p == "*" || p == h {
		return true
	}
	if strings.HasPrefix(p, "*") {
		return strings.HasSuffix(strings.TrimPrefix(h, "*"), p[1:])
	}
	return false
}

// moreSpecific returns whichever of two matching hosts is narrower.
func moreSpecific(a, b string) string {
	if hostCovers(a, b) {
		return b
	}
	return a
}

// shortHosts returns the names a client in namespace ns may dial for a
// Kubernetes FQDN (name.ns.svc.cluster.local): "name" (same namespace only),
// "name.ns" and "name.ns.svc". Other hosts have no short forms.
func shortHosts(host, clientNamespace string, sameNamespaceShort bool) []string {
	const suffix = ".svc.cluster.local"
	if !strings.HasSuffix(host, suffix) {
		return nil
	}
	base := strings.TrimSuffix(host, suffix) // name.ns
	i := strings.LastIndexByte(base, '.')
	if i < 0 {
		return nil
	}
	name, ns := base[:i], base[i+1:]
	var out []string
	if !sameNamespaceShort || ns == clientNamespace {
		out = append(out, name)
	}
	return append(out, base, base+".svc")
}

// domainsFor lists a virtual host's domains: every name with and without :port.
func domainsFor(names []string, port uint32) []string {
	out := make([]string, 0, 2*len(names))
	for _, n := range names {
		if n == "*" {
			out = append(out, "*")
			continue
		}
		out = append(out, n, HostPort(n, port))
	}
	return out
}
