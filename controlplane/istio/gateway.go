package istio

import (
	"fmt"
	"sort"
	"strings"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// gatewayProtocols are the server protocols Istio accepts.
var gatewayProtocols = map[string]bool{
	ProtoHTTP: true, ProtoHTTPS: true, ProtoHTTP2: true, ProtoGRPC: true, ProtoGRPCWeb: true,
	ProtoTCP: true, ProtoTLS: true, "MONGO": true, "REDIS": true, "MYSQL": true,
}

// buildGateways converts Gateways, sorted by namespace/name.
func (b *builder) buildGateways(secrets map[string]*model.Secret) []*model.Gateway {
	var out []*model.Gateway
	for _, g := range b.gateways {
		if gw := b.gateway(g, secrets); gw != nil {
			out = append(out, gw)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

func (b *builder) gateway(g typed[*networking.Gateway], secrets map[string]*model.Secret) *model.Gateway {
	o, spec := g.obj, g.spec
	n := len(b.errs)
	gw := &model.Gateway{
		Name:      o.Name,
		Namespace: o.Namespace,
		Selector:  copyLabels(spec.GetSelector()),
		Source:    o.Source(),
	}
	if gw.Selector == nil {
		gw.Selector = map[string]string{}
	}
	if len(spec.GetServers()) == 0 {
		b.errorf(o, "spec.servers", "at least one server is required")
	}
	for i, s := range spec.GetServers() {
		field := fmt.Sprintf("spec.servers[%d]", i)
		srv := model.GatewayServer{
			Port:     s.GetPort().GetNumber(),
			PortName: s.GetPort().GetName(),
			Protocol: strings.ToUpper(s.GetPort().GetProtocol()),
		}
		if s.GetPort() == nil {
			b.errorf(o, field+".port", "required")
			continue
		}
		if srv.Port < 1 || srv.Port > 65535 {
			b.errorf(o, field+".port.number", "port %d out of range 1-65535", srv.Port)
		}
		if !gatewayProtocols[srv.Protocol] {
			b.errorf(o, field+".port.protocol", "unknown protocol %q", s.GetPort().GetProtocol())
		}
		if len(s.GetHosts()) == 0 {
			b.errorf(o, field+".hosts", "at least one host is required")
		}
		for j, h := range s.GetHosts() {
			host, err := gatewayHost(h, o.Namespace)
			if err != nil {
				b.errorf(o, fmt.Sprintf("%s.hosts[%d]", field, j), "%v", err)
				continue
			}
			srv.Hosts = append(srv.Hosts, host)
		}
		srv.TLS = b.serverTLS(g, field+".tls", srv.Protocol, s.GetTls(), secrets)
		gw.Servers = append(gw.Servers, srv)
	}
	if len(b.errs) > n {
		return nil
	}
	return gw
}

// gatewayHost normalises a Gateway server host: "host" → "*/host",
// "./host" → "<gateway namespace>/host", "ns/host" kept; lower-cased.
func gatewayHost(h, namespace string) (string, error) {
	h = strings.ToLower(strings.TrimSpace(h))
	ns, host, ok := strings.Cut(h, "/")
	if !ok {
		ns, host = "*", h
	}
	if ns == "." {
		ns = namespace
	}
	if ns == "" || host == "" || strings.Contains(host, "/") {
		return "", fmt.Errorf("host %q: want host, namespace/host or */host", h)
	}
	if i := strings.LastIndex(host, "*"); i > 0 || (i == 0 && host != "*" && !strings.HasPrefix(host, "*.")) {
		return "", fmt.Errorf("host %q: a wildcard is only allowed as the leftmost label (*.example.com)", h)
	}
	if err := checkHostName(host); err != nil {
		return "", err
	}
	return ns + "/" + host, nil
}

func (b *builder) serverTLS(g typed[*networking.Gateway], field, protocol string, t *networking.ServerTLSSettings, secrets map[string]*model.Secret) *model.ServerTLS {
	o := g.obj
	needsTLS := protocol == ProtoHTTPS || protocol == ProtoTLS
	if t == nil {
		if needsTLS {
			b.errorf(o, field, "required for protocol %s", protocol)
		}
		return nil
	}
	out := &model.ServerTLS{
		Mode:               t.GetMode().String(),
		CredentialName:     t.GetCredentialName(),
		HTTPSRedirect:      t.GetHttpsRedirect(),
		MinProtocolVersion: t.GetMinProtocolVersion().String(),
	}
	if t.GetMinProtocolVersion() == networking.ServerTLSSettings_TLS_AUTO {
		out.MinProtocolVersion = ""
	}
	if !needsTLS {
		// Plain servers may only ask for a redirect to HTTPS.
		out.Mode = ""
		if !out.HTTPSRedirect {
			return nil
		}
		return out
	}
	switch t.GetMode() {
	case networking.ServerTLSSettings_SIMPLE, networking.ServerTLSSettings_MUTUAL:
		if t.GetCredentialName() == "" {
			b.errorf(o, field+".credentialName", "required for mode %s (file certificates are not supported)", out.Mode)
			return out
		}
		sec, ok := secrets[t.GetCredentialName()]
		if !ok {
			for _, s := range b.secrets {
				if s.obj.Name == t.GetCredentialName() {
					// Not a second problem: the Secret's own error says why.
					b.errorf(o, field+".credentialName", "Secret %q (%s) is invalid; see its own error", t.GetCredentialName(), s.obj.Source().File)
					return out
				}
			}
			b.errorf(o, field+".credentialName", "no Secret named %q", t.GetCredentialName())
			return out
		}
		if t.GetMode() == networking.ServerTLSSettings_MUTUAL && len(sec.CACertificate) == 0 {
			b.errorf(o, field+".credentialName", "mode MUTUAL needs %s in Secret %q", "ca.crt", t.GetCredentialName())
		}
	case networking.ServerTLSSettings_PASSTHROUGH, networking.ServerTLSSettings_AUTO_PASSTHROUGH:
		if protocol != ProtoTLS {
			b.errorf(o, field+".mode", "mode %s needs protocol TLS", out.Mode)
		}
	default:
		b.errorf(o, field+".mode", "unsupported mode %s", out.Mode)
	}
	if t.GetMaxProtocolVersion() != networking.ServerTLSSettings_TLS_AUTO && t.GetMinProtocolVersion() > t.GetMaxProtocolVersion() {
		b.errorf(o, field+".minProtocolVersion", "%s is above maxProtocolVersion %s", t.GetMinProtocolVersion(), t.GetMaxProtocolVersion())
	}
	return out
}
