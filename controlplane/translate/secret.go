package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// TLSTransportSocketName is the transport socket carrying TLS contexts.
const TLSTransportSocketName = "envoy.transport_sockets.tls"

// Secret is an SDS tls_certificate with the key material inline.
func Secret(s *model.Secret) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: s.Name,
		Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: s.CertificateChain}},
			PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: s.PrivateKey}},
		}},
	}
}

// DownstreamTLS terminates TLS with the certificate named credentialName,
// fetched over SDS on the ADS stream.
func DownstreamTLS(tls *model.ServerTLS) *tlsv3.DownstreamTlsContext {
	ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		AlpnProtocols: []string{"h2", "http/1.1"},
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{
			Name: tls.CredentialName, SdsConfig: adsSource(),
		}},
	}}
	if v, ok := tlsVersion(tls.MinProtocolVersion); ok {
		ctx.CommonTlsContext.TlsParams = &tlsv3.TlsParameters{TlsMinimumProtocolVersion: v}
	}
	return ctx
}

func tlsVersion(v string) (tlsv3.TlsParameters_TlsProtocol, bool) {
	switch v {
	case "TLSV1_0":
		return tlsv3.TlsParameters_TLSv1_0, true
	case "TLSV1_1":
		return tlsv3.TlsParameters_TLSv1_1, true
	case "TLSV1_2":
		return tlsv3.TlsParameters_TLSv1_2, true
	case "TLSV1_3":
		return tlsv3.TlsParameters_TLSv1_3, true
	}
	return 0, false
}
