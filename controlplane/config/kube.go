package config

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	kjson "sigs.k8s.io/json"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// Secret data keys of a kubernetes.io/tls secret.
const (
	SecretCertKey = corev1.TLSCertKey       // tls.crt
	SecretKeyKey  = corev1.TLSPrivateKeyKey // tls.key
	SecretCAKey   = "ca.crt"
)

func newService() any       { return &corev1.Service{} }
func newEndpointSlice() any { return &discoveryv1.EndpointSlice{} }
func newSecret() any        { return &corev1.Secret{} }

// unmarshalStrict decodes Kubernetes JSON as the API server does: case
// sensitive, every unknown or duplicate field reported with its path.
func unmarshalStrict(js []byte, v any) ([]error, error) {
	return kjson.UnmarshalStrict(js, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
}

// checkKube checks what Rosen needs beyond the schema.
func checkKube(o *Object, v any) model.Errors {
	s, ok := v.(*corev1.Secret)
	if !ok {
		return nil
	}
	// stringData is write-only convenience: merge it over data, as the API server does.
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		for k, val := range s.StringData {
			s.Data[k] = []byte(val)
		}
		s.StringData = nil
	}
	var errs model.Errors
	if s.Type != "" && s.Type != corev1.SecretTypeTLS && s.Type != corev1.SecretTypeOpaque {
		errs = append(errs, model.Errorf(o.Source(), "type", "unsupported secret type %q (want %s)", s.Type, corev1.SecretTypeTLS))
	}
	for _, k := range []string{SecretCertKey, SecretKeyKey} {
		if len(s.Data[k]) == 0 {
			errs = append(errs, model.Errorf(o.Source(), "data."+k, "required (in data, base64, or stringData)"))
		}
	}
	return errs
}
