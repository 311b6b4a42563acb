package istio

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// buildSecrets checks every TLS secret's key material (so that Envoy never
// receives a certificate it cannot load) and indexes them by name, as
// gateways' credentialName refers to them.
func (b *builder) buildSecrets() map[string]*model.Secret {
	out := map[string]*model.Secret{}
	for _, s := range b.secrets {
		o := s.obj
		cert, key := s.spec.Data[config.SecretCertKey], s.spec.Data[config.SecretKeyKey]
		if _, err := tls.X509KeyPair(cert, key); err != nil {
			b.errorf(o, "data", "invalid %s/%s pair: %v", config.SecretCertKey, config.SecretKeyKey, err)
			continue
		}
		ca := s.spec.Data[config.SecretCAKey]
		if len(ca) > 0 && !x509.NewCertPool().AppendCertsFromPEM(ca) {
			b.errorf(o, "data."+config.SecretCAKey, "no PEM certificate found")
			continue
		}
		if prev, ok := out[o.Name]; ok {
			b.errorf(o, "metadata.name", "secret name %q is also used by %s/%s (%s): credentialName must be unique",
				o.Name, prev.Source.Namespace, prev.Source.Name, prev.Source.File)
			continue
		}
		out[o.Name] = &model.Secret{
			Name:             o.Name,
			CertificateChain: cert,
			PrivateKey:       key,
			CACertificate:    ca,
			Source:           o.Source(),
		}
	}
	return out
}
