package coordinator

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// DefaultDenyNets are the networks the coordinator never calls unless told
// to: link-local addresses, where the cloud instance metadata services
// answer (169.254.169.254 on AWS, GCP and Azure), and AWS's IPv6 metadata
// address. A branch's confirm and cancel URLs come from whoever may begin a
// transaction; without this a client could make the coordinator call the
// metadata service with the coordinator's network identity and read part of
// the answer back from the transaction's status.
var DefaultDenyNets = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
}

// netGuard refuses participant addresses in its networks. It is checked
// twice: on the URL when a branch is registered (a literal address gets a
// 400 at once) and on every connection's resolved address (a name that
// resolves into a denied network, a redirect to one, or DNS that changes
// after registration).
type netGuard []netip.Prefix

// nat64 is the NAT64 well-known prefix: 64:ff9b::a9fe:a9fe is
// 169.254.169.254 to a NAT64 gateway.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// denied returns the network of nets that holds ip, if any. An address is
// also checked as what it reaches: 0.0.0.0 and :: connect to this host's
// loopback, and a NAT64 address to the IPv4 address it embeds.
func (g netGuard) denied(ip netip.Addr) (netip.Prefix, bool) {
	ip = ip.Unmap().WithZone("")
	reach := []netip.Addr{ip}
	switch {
	case ip == netip.IPv4Unspecified():
		reach = append(reach, netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	case ip == netip.IPv6Unspecified():
		reach = append(reach, netip.IPv6Loopback())
	case nat64.Contains(ip):
		b := ip.As16()
		reach = append(reach, netip.AddrFrom4([4]byte(b[12:])))
	}
	for _, p := range g {
		for _, a := range reach {
			if p.Contains(a) {
				return p, true
			}
		}
	}
	return netip.Prefix{}, false
}

// checkHost refuses a literal IP host in a denied network; names are left to
// the dial-time check.
func (g netGuard) checkHost(host string) error {
	if len(g) == 0 {
		return nil
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	ip, err := netip.ParseAddr(host)
	if err != nil {
		// Forms net.ParseIP does not take but some resolvers do (0xa9fe.0xa9fe,
		// 2852039166) are resolved by the OS at dial time and caught there.
		return nil
	}
	if p, bad := g.denied(ip); bad {
		return fmt.Errorf("%w: address %s is in %s, which participants may not use (--txn-deny-nets)", ErrBadInput, ip, p)
	}
	return nil
}

// checkURL refuses an http(s) or grpc URL whose host is a denied literal address.
func (g netGuard) checkURL(raw string) error {
	if len(g) == 0 {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil // checkAction reports the malformed URL
	}
	return g.checkHost(u.Hostname())
}

// control is a net.Dialer.Control: it runs after name resolution, on the
// address about to be connected to.
func (g netGuard) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("participant address %q: %w", address, err)
	}
	if p, bad := g.denied(ip); bad {
		return fmt.Errorf("participant address %s is in %s, which participants may not use (--txn-deny-nets)", ip, p)
	}
	return nil
}

// proxy wraps a transport's Proxy function. Through an HTTP proxy (such as
// HTTP_PROXY from the environment) the coordinator dials only the proxy, so
// control sees the proxy's address and the proxy connects to the
// participant: without this, http://metadata.google.internal/ or a redirect
// to http://169.254.169.254/ went through the proxy unchecked. A proxied
// participant's name is resolved here and refused if any of its addresses is
// denied, or if it does not resolve. (The proxy resolves it again: a name
// whose DNS answer differs at the proxy is beyond this check.)
func (g netGuard) proxy(next func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	if len(g) == 0 || next == nil {
		return next
	}
	return func(r *http.Request) (*url.URL, error) {
		p, err := next(r)
		if p == nil || err != nil {
			return p, err
		}
		host := r.URL.Hostname()
		ips, err := net.DefaultResolver.LookupNetIP(r.Context(), "ip", host)
		if err != nil {
			return nil, fmt.Errorf("participant %s, to be reached through proxy %s: %w", host, p.Redacted(), err)
		}
		for _, ip := range ips {
			if pfx, bad := g.denied(ip); bad {
				return nil, fmt.Errorf("participant address %s (%s, through proxy %s) is in %s, which participants may not use (--txn-deny-nets)", ip, host, p.Redacted(), pfx)
			}
		}
		return p, nil
	}
}

// dialer returns the dialer participant connections use.
func (g netGuard) dialer() *net.Dialer {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if len(g) > 0 {
		d.Control = g.control
	}
	return d
}

// dialContext is dialer().DialContext in the shape grpc.WithContextDialer wants.
func (g netGuard) dialContext(ctx context.Context, addr string) (net.Conn, error) {
	return g.dialer().DialContext(ctx, "tcp", addr)
}
