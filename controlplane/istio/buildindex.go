package istio

import (
	"regexp"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/rosenmesh/rosen/controlplane/validate"
)

// sliceKey names the Service an EndpointSlice belongs to.
type sliceKey struct{ namespace, service string }

// slicesOf returns the EndpointSlices of Service namespace/name (label
// kubernetes.io/service-name), in input order. The index is built on first
// use, once per Build, so matching slices to services is linear rather than
// services × slices.
func (b *builder) slicesOf(namespace, name string) []typed[*discoveryv1.EndpointSlice] {
	if b.sliceIndex == nil {
		b.sliceIndex = make(map[sliceKey][]typed[*discoveryv1.EndpointSlice], len(b.endpointSlices))
		for _, es := range b.endpointSlices {
			k := sliceKey{es.obj.Namespace, es.obj.Labels[labelServiceName]}
			b.sliceIndex[k] = append(b.sliceIndex[k], es)
		}
	}
	return b.sliceIndex[sliceKey{namespace, name}]
}

// compileRegex is regexp.Compile's error, memoised per Build: the same
// patterns recur across the routes of many VirtualServices.
func (b *builder) compileRegex(re string) error {
	if err, ok := b.regexErrs[re]; ok {
		return err
	}
	_, err := regexp.Compile(re)
	if err == nil {
		// Envoy also refuses a regex whose RE2 program is too large; the
		// gate would find it too, but on the Envoy route, at the start of
		// the document and once per route configuration.
		err = validate.RegexTooComplex(re)
	}
	if b.regexErrs == nil {
		b.regexErrs = map[string]error{}
	}
	b.regexErrs[re] = err
	return err
}
