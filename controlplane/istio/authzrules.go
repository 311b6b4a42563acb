package istio

import (
	"fmt"
	"strings"

	security "istio.io/api/security/v1beta1"
)

type ruleError struct{ field, msg string }

func fieldf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// whenKeys are the condition keys Rosen translates to RBAC on gateways.
var whenKeys = []string{"request.headers[", "source.ip", "remote.ip", "request.auth.principal", "request.auth.audiences", "request.auth.presenter", "request.auth.claims["}

// CheckRules reports the AuthorizationPolicy rule fields that Rosen cannot
// enforce on a gateway: identities that need mTLS (principals, namespaces,
// service accounts) and unknown condition keys. A policy is rejected whole
// rather than enforced partly, because a dropped DENY condition would let
// traffic through.
func CheckRules(rules []*security.Rule) []ruleError {
	var errs []ruleError
	for i, r := range rules {
		for j, f := range r.GetFrom() {
			s := f.GetSource()
			at := fieldf("spec.rules[%d].from[%d].source", i, j)
			if len(s.GetPrincipals())+len(s.GetNotPrincipals())+len(s.GetNamespaces())+len(s.GetNotNamespaces())+len(s.GetServiceAccounts())+len(s.GetNotServiceAccounts()) > 0 {
				errs = append(errs, ruleError{at, "principals, namespaces and serviceAccounts need mTLS peer identities, which Rosen gateways do not check; use requestPrincipals or ipBlocks"})
			}
		}
		for j, c := range r.GetWhen() {
			ok := false
			for _, k := range whenKeys {
				if c.GetKey() == k || strings.HasSuffix(k, "[") && strings.HasPrefix(c.GetKey(), k) && strings.HasSuffix(c.GetKey(), "]") {
					ok = true
				}
			}
			if !ok {
				errs = append(errs, ruleError{fieldf("spec.rules[%d].when[%d].key", i, j), fmt.Sprintf("unsupported key %q (supported: request.headers[...], source.ip, remote.ip, request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[...])", c.GetKey())})
			}
		}
	}
	return errs
}
