package config

import (
	"encoding/json"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	security "istio.io/api/security/v1beta1"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// Security and Rosen kinds.
const (
	KindAuthorizationPolicy   = "AuthorizationPolicy"
	KindRequestAuthentication = "RequestAuthentication"
	KindRateLimitPolicy       = "RateLimitPolicy"
)

// securityVersions are the security.istio.io versions accepted; both share
// the v1beta1 message types, as in istio.io/api.
var securityVersions = map[string]bool{
	"security.istio.io/v1":      true,
	"security.istio.io/v1beta1": true,
}

var securityKinds = map[string]func() proto.Message{
	KindAuthorizationPolicy:   func() proto.Message { return &security.AuthorizationPolicy{} },
	KindRequestAuthentication: func() proto.Message { return &security.RequestAuthentication{} },
}

// RosenAPIVersion is the apiVersion of Rosen's own kinds.
const RosenAPIVersion = "rosen.dev/v1alpha1"

// RateLimitPolicy attaches global rate limits (served by Rosen's RLS) to the
// routes of a VirtualService bound to gateways.
type RateLimitPolicy struct {
	Spec RateLimitPolicySpec `json:"spec"`
}

// RateLimitPolicySpec is the spec of a RateLimitPolicy.
type RateLimitPolicySpec struct {
	TargetRef RateLimitTarget `json:"targetRef"`
	// Domain is the envoyproxy/ratelimit domain the descriptors are sent in.
	Domain string `json:"domain"`
	// Descriptors become the route's rate_limits, one each.
	Descriptors []RateLimitDescriptor `json:"descriptors"`
	// FailureModeDeny rejects requests when the RLS cannot answer.
	FailureModeDeny bool `json:"failureModeDeny,omitempty"`
}

// RateLimitTarget names a VirtualService (and optionally one of its named http routes).
type RateLimitTarget struct {
	Kind      string `json:"kind"` // VirtualService
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Route     string `json:"route,omitempty"`
}

// RateLimitDescriptor is one descriptor built from request data.
type RateLimitDescriptor struct {
	Entries []RateLimitEntry `json:"entries"`
}

// RateLimitEntry is one action; exactly one field is set.
type RateLimitEntry struct {
	RemoteAddress *struct{}      `json:"remoteAddress,omitempty"`
	RequestHeader *HeaderEntry   `json:"requestHeader,omitempty"`
	GenericKey    *GenericKey    `json:"genericKey,omitempty"`
	Path          *DescriptorKey `json:"path,omitempty"`
	Method        *DescriptorKey `json:"method,omitempty"`
	JWTClaim      *JWTClaimEntry `json:"jwtClaim,omitempty"`
}

// HeaderEntry sends the value of a request header under key.
type HeaderEntry struct {
	Header string `json:"header"`
	Key    string `json:"key"`
}

// GenericKey sends a fixed key/value.
type GenericKey struct {
	Key   string `json:"key,omitempty"`
	Value string `json:"value"`
}

// DescriptorKey names the descriptor key of a request attribute.
type DescriptorKey struct {
	Key string `json:"key"`
}

// JWTClaimEntry sends a verified JWT claim (jwt_authn payload metadata).
type JWTClaimEntry struct {
	Claim string `json:"claim"`
	Key   string `json:"key"`
}

// rosenTopLevel are the top-level keys of a Rosen resource.
var rosenTopLevel = istioTopLevel

func parseRateLimitPolicy(o *Object, js []byte) model.Errors {
	var top map[string]json.RawMessage
	_ = json.Unmarshal(js, &top)
	var errs model.Errors
	for _, k := range sortedKeys(top) {
		if !rosenTopLevel[k] {
			errs = append(errs, model.Errorf(o.Source(), "", "unknown field %q", k))
		}
	}
	spec, ok := top["spec"]
	if !ok || string(spec) == "null" {
		return append(errs, model.Errorf(o.Source(), "spec", "required"))
	}
	var p RateLimitPolicySpec
	strict, err := unmarshalStrict(spec, &p)
	if err != nil {
		return append(errs, model.Errorf(o.Source(), "spec", "%s", strings.TrimPrefix(err.Error(), "json: ")))
	}
	for _, se := range strict {
		m := strictField.FindStringSubmatch(se.Error())
		if m == nil {
			errs = append(errs, model.Errorf(o.Source(), "spec", "%v", se))
			continue
		}
		parent, key := splitPath(m[2])
		errs = append(errs, model.Errorf(o.Source(), joinField("spec", parent), "%s field %q", m[1], key))
	}
	if len(errs) > 0 {
		return errs
	}
	errs = append(errs, checkRateLimitPolicy(o, &p)...)
	o.Spec = &p
	return errs
}

func joinField(a, b string) string {
	if b == "" {
		return a
	}
	return a + "." + b
}

func checkRateLimitPolicy(o *Object, p *RateLimitPolicySpec) model.Errors {
	var errs model.Errors
	bad := func(field, format string, args ...any) {
		errs = append(errs, model.Errorf(o.Source(), field, format, args...))
	}
	if p.TargetRef.Kind != KindVirtualService {
		bad("spec.targetRef.kind", "must be VirtualService, got %q", p.TargetRef.Kind)
	}
	if p.TargetRef.Name == "" {
		bad("spec.targetRef.name", "required")
	}
	if p.Domain == "" {
		bad("spec.domain", "required")
	}
	if len(p.Descriptors) == 0 {
		bad("spec.descriptors", "at least one descriptor is required")
	}
	for i, d := range p.Descriptors {
		if len(d.Entries) == 0 {
			bad(fieldf("spec.descriptors[%d].entries", i), "at least one entry is required")
		}
		for j, e := range d.Entries {
			at := fieldf("spec.descriptors[%d].entries[%d]", i, j)
			n := 0
			for _, set := range []bool{e.RemoteAddress != nil, e.RequestHeader != nil, e.GenericKey != nil, e.Path != nil, e.Method != nil, e.JWTClaim != nil} {
				if set {
					n++
				}
			}
			if n != 1 {
				bad(at, "exactly one of remoteAddress, requestHeader, genericKey, path, method, jwtClaim must be set")
				continue
			}
			switch {
			case e.RequestHeader != nil && (e.RequestHeader.Header == "" || e.RequestHeader.Key == ""):
				bad(at+".requestHeader", "header and key are required")
			case e.GenericKey != nil && e.GenericKey.Value == "":
				bad(at+".genericKey.value", "required")
			case e.Path != nil && e.Path.Key == "", e.Method != nil && e.Method.Key == "":
				bad(at, "key is required")
			case e.JWTClaim != nil && (e.JWTClaim.Claim == "" || e.JWTClaim.Key == ""):
				bad(at+".jwtClaim", "claim and key are required")
			}
		}
	}
	return errs
}

// specMessage returns an empty spec message for an Istio kind.
func specMessage(kind string) proto.Message {
	if f := securityKinds[kind]; f != nil {
		return f()
	}
	return istioKinds[kind]()
}

func fieldf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
