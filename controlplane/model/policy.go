package model

import (
	security "istio.io/api/security/v1beta1"
)

// Security is the policy on the data path: who may call what (RBAC and
// ext_authz), with which tokens (JWT), and how often (global rate limits).
// Translation turns it into gateway HTTP filters in the order
// jwt_authn → rbac → ext_authz → ratelimit → cors/fault → router.
type Security struct {
	// RequestAuthentications sorted by namespace/name.
	RequestAuthentications []*RequestAuthentication `json:"requestAuthentications,omitempty"`
	// AuthorizationPolicies sorted by namespace/name.
	AuthorizationPolicies []*AuthorizationPolicy `json:"authorizationPolicies,omitempty"`
	// RateLimits sorted by namespace/name.
	RateLimits []*RateLimit `json:"rateLimits,omitempty"`
}

// WorkloadSelector picks the proxies a policy applies to: Selector labels
// (all must match) within Namespace; a policy in the root namespace
// (istio-system) with no selector applies to every proxy.
type WorkloadSelector struct {
	Namespace string            `json:"namespace"`
	Selector  map[string]string `json:"selector,omitempty"`
	// MeshWide is set for a policy in the root namespace without a selector.
	MeshWide bool `json:"meshWide,omitempty"`
}

// RequestAuthentication is an Istio RequestAuthentication: trusted JWT issuers.
type RequestAuthentication struct {
	Name      string              `json:"name"`
	Namespace string              `json:"namespace"`
	Workloads WorkloadSelector    `json:"workloads"`
	Rules     []*security.JWTRule `json:"rules"`
	Source    Source              `json:"source"`
}

// Authorization actions.
const (
	ActionAllow  = "ALLOW"
	ActionDeny   = "DENY"
	ActionCustom = "CUSTOM"
	ActionAudit  = "AUDIT"
)

// RosenAuthzProvider is the CUSTOM provider name that means Rosen's own ext_authz.
const RosenAuthzProvider = "rosen"

// AuthorizationPolicy is an Istio AuthorizationPolicy.
type AuthorizationPolicy struct {
	Name      string           `json:"name"`
	Namespace string           `json:"namespace"`
	Workloads WorkloadSelector `json:"workloads"`
	Action    string           `json:"action"`
	// Provider is the CUSTOM action's provider (only "rosen" is known).
	Provider string           `json:"provider,omitempty"`
	Rules    []*security.Rule `json:"rules,omitempty"`
	Source   Source           `json:"source"`
}

// RateLimit is a RateLimitPolicy resolved to its VirtualService.
type RateLimit struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// VirtualService is "namespace/name"; Route, when set, names one http route.
	VirtualService  string                `json:"virtualService"`
	Route           string                `json:"route,omitempty"`
	Domain          string                `json:"domain"`
	FailureModeDeny bool                  `json:"failureModeDeny,omitempty"`
	Descriptors     []RateLimitDescriptor `json:"descriptors"`
	Source          Source                `json:"source"`
}

// RateLimitDescriptor is one descriptor: its entries, in order.
type RateLimitDescriptor struct {
	Entries []RateLimitEntry `json:"entries"`
}

// RateLimitEntry kinds.
const (
	EntryRemoteAddress = "remoteAddress"
	EntryRequestHeader = "requestHeader"
	EntryGenericKey    = "genericKey"
	EntryPath          = "path"
	EntryMethod        = "method"
	EntryJWTClaim      = "jwtClaim"
)

// RateLimitEntry is one action producing a descriptor entry.
type RateLimitEntry struct {
	Kind string `json:"kind"`
	// Key is the descriptor key; Header, Value and Claim depend on Kind.
	Key    string `json:"key,omitempty"`
	Header string `json:"header,omitempty"`
	Value  string `json:"value,omitempty"`
	Claim  string `json:"claim,omitempty"`
}
