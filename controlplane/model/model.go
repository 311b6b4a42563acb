// Package model holds Rosen's intermediate representation (IR): the mesh as
// plain, resolved, validated data between the config sources and the xDS
// translation. Every host is fully qualified, every destination is resolved to
// an Envoy cluster name, and every VirtualService is bound to the gateways (or
// the mesh) it applies to. Slices are sorted so that the same inputs always
// produce the same Mesh, and translation of it is byte-for-byte deterministic.
//
// Leaf features that are already plain validated data in istio.io/api
// (HTTP match requests, retries, fault injection, CORS, header operations,
// rewrites, redirects, load balancer and connection pool settings) are kept as
// those message types rather than copied into parallel structs; this package
// adds what Istio leaves implicit: resolved names, merge order and provenance.
package model

import (
	networking "istio.io/api/networking/v1alpha3"
)

// Source says where a piece of config came from, so that every error can name
// the file, the resource and the field.
type Source struct {
	File      string `json:"file,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

// Mesh is the whole resolved configuration. Translation reads it and never
// writes it; the model builder produces a fresh Mesh for every change.
type Mesh struct {
	// Services by fully qualified host, sorted by Host.
	Services []*Service `json:"services"`
	// Gateways sorted by Namespace/Name.
	Gateways []*Gateway `json:"gateways"`
	// VirtualServices sorted by Namespace/Name, with hosts and destinations resolved.
	VirtualServices []*VirtualService `json:"virtualServices"`
	// Secrets available to gateways over SDS, by credentialName (namespace-less, as Istio's gateway SDS does).
	Secrets []*Secret `json:"secrets,omitempty"`
	// Security is the data-path policy (policy.go); nil when there is none.
	Security *Security `json:"security,omitempty"`
}

// ServicePort is one port of a service.
type ServicePort struct {
	Number uint32 `json:"number"`
	// Name of the port ("http", "grpc-web", ...). EndpointSlice and
	// WorkloadEntry endpoints map ports by name.
	Name string `json:"name,omitempty"`
	// Protocol: HTTP, HTTP2, GRPC, HTTPS, TCP, TLS ... (upper case, as Istio).
	Protocol string `json:"protocol,omitempty"`
}

// Resolution says how a service's endpoints are found.
type Resolution string

const (
	ResolutionStatic Resolution = "STATIC" // explicit endpoints (EDS)
	ResolutionDNS    Resolution = "DNS"    // Envoy resolves the endpoint addresses (STRICT_DNS)
	ResolutionNone   Resolution = "NONE"   // passthrough; no endpoints known
)

// Locality of an endpoint, as Envoy's core.Locality.
type Locality struct {
	Region  string `json:"region,omitempty"`
	Zone    string `json:"zone,omitempty"`
	SubZone string `json:"subZone,omitempty"`
}

// Endpoint is one workload instance behind a service.
type Endpoint struct {
	Address string `json:"address"`
	// Ports maps a service port *name* to the workload's port number. A service
	// port missing from the map is served on the service port number itself.
	Ports    map[string]uint32 `json:"ports,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Locality Locality          `json:"locality,omitempty"`
	// Weight is the load-balancing weight (>=1).
	Weight uint32 `json:"weight,omitempty"`
	// Healthy is false for endpoints reported not ready (EndpointSlice conditions).
	Healthy bool `json:"healthy"`
	// Draining marks an endpoint that is shutting down but still serving
	// (EndpointSlice ready=false, serving=true, terminating=true): Envoy gets
	// it as DRAINING, so no new requests go there but it stays known.
	Draining bool `json:"draining,omitempty"`
	// ClusterID is the Kubernetes cluster the endpoint lives in (from the
	// topology.istio.io/cluster label, as Istio); empty for a single-cluster
	// or file-only mesh.
	ClusterID string `json:"clusterId,omitempty"`
	Source    Source `json:"source"`
}

// Subset is a named group of a service's endpoints (DestinationRule subsets).
type Subset struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// Policy is the subset's traffic policy already merged over the
	// DestinationRule's top-level policy (Istio semantics: subset wins).
	Policy *networking.TrafficPolicy `json:"policy,omitempty"`
}

// Service is a host in the mesh: from a Kubernetes Service or a ServiceEntry.
type Service struct {
	Host       string                    `json:"host"` // FQDN, e.g. reviews.default.svc.cluster.local
	Namespace  string                    `json:"namespace"`
	Ports      []ServicePort             `json:"ports"`
	Resolution Resolution                `json:"resolution"`
	Endpoints  []Endpoint                `json:"endpoints,omitempty"` // sorted by address
	Policy     *networking.TrafficPolicy `json:"policy,omitempty"`    // DestinationRule trafficPolicy
	Subsets    []Subset                  `json:"subsets,omitempty"`   // sorted by name
	Source     Source                    `json:"source"`
	// DestinationRule that supplied Policy/Subsets, if any.
	RuleSource *Source `json:"ruleSource,omitempty"`
}

// ServerTLS is a gateway server's TLS settings.
type ServerTLS struct {
	// Mode is SIMPLE, MUTUAL, PASSTHROUGH (only SIMPLE is translated today).
	Mode               string `json:"mode"`
	CredentialName     string `json:"credentialName,omitempty"`
	HTTPSRedirect      bool   `json:"httpsRedirect,omitempty"`
	MinProtocolVersion string `json:"minProtocolVersion,omitempty"`
}

// GatewayServer is one server block of a Gateway.
type GatewayServer struct {
	Port     uint32 `json:"port"`
	PortName string `json:"portName,omitempty"`
	Protocol string `json:"protocol"` // HTTP, HTTPS, HTTP2, GRPC, TLS, TCP
	// Hosts as written, "ns/host" or "host" (and "*"), with "*/" defaulted.
	Hosts []string   `json:"hosts"`
	TLS   *ServerTLS `json:"tls,omitempty"`
}

// Gateway is an Istio Gateway: servers on the proxies its selector matches.
type Gateway struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Selector  map[string]string `json:"selector"`
	Servers   []GatewayServer   `json:"servers"`
	Source    Source            `json:"source"`
}

// Key is "namespace/name", the form VirtualServices use to bind.
func (g *Gateway) Key() string { return g.Namespace + "/" + g.Name }

// MeshGateway is the reserved gateway name for sidecars and proxyless clients.
const MeshGateway = "mesh"

// Destination is a resolved route destination.
type Destination struct {
	Host   string `json:"host"` // FQDN
	Port   uint32 `json:"port"` // resolved: the service's only port when not given
	Subset string `json:"subset,omitempty"`
	Weight uint32 `json:"weight"` // 0 in input means "only destination" → 100
	// Cluster is the Envoy cluster name, outbound|port|subset|host.
	Cluster string              `json:"cluster"`
	Headers *networking.Headers `json:"headers,omitempty"`
}

// HTTPRoute is one http entry of a VirtualService, with destinations resolved.
// Spec keeps the original istio message for the leaf features (match, rewrite,
// redirect, retries, timeout, fault, headers, mirror, corsPolicy); Route,
// Mirror and Mirrors in Spec must not be used: the resolved fields below are.
type HTTPRoute struct {
	Name    string                `json:"name,omitempty"`
	Spec    *networking.HTTPRoute `json:"spec"`
	Route   []Destination         `json:"route,omitempty"`
	Mirrors []MirrorDestination   `json:"mirrors,omitempty"`
	// Index is the position of this route within its VirtualService's http list.
	Index int `json:"index"`
}

// MirrorDestination is a resolved mirror with its percentage (0-100).
type MirrorDestination struct {
	Destination Destination `json:"destination"`
	Percent     float64     `json:"percent"`
}

// VirtualService is an Istio VirtualService, resolved.
type VirtualService struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Hosts fully qualified ("reviews" → "reviews.default.svc.cluster.local");
	// external names and wildcards ("*.example.com") are kept as written.
	Hosts []string `json:"hosts"`
	// Gateways as "namespace/name" keys, or MeshGateway. Empty input means mesh.
	Gateways []string    `json:"gateways"`
	HTTP     []HTTPRoute `json:"http"`
	Source   Source      `json:"source"`
}

// Secret is TLS key material for a gateway server (credentialName).
type Secret struct {
	Name string `json:"name"`
	// PEM-encoded certificate chain and private key.
	CertificateChain []byte `json:"-"`
	PrivateKey       []byte `json:"-"`
	// CACertificate, when set, validates client certificates (MUTUAL).
	CACertificate []byte `json:"-"`
	Source        Source `json:"source"`
}
