// Package istio gives parsed configuration (config.Set) Istio's meaning and
// produces the resolved model (model.Mesh).
//
// What it resolves, as Istio does:
//   - Short hosts: "reviews" in namespace "default" is
//     "reviews.default.svc.cluster.local"; "reviews.default" gains
//     ".svc.cluster.local"; a host with two or more dots, an IP address or a
//     wildcard is kept as written (lower-cased).
//   - Services from Kubernetes Services (with their EndpointSlices and the
//     WorkloadEntries their selector matches) and from ServiceEntries (one
//     Service per host; endpoints inline or WorkloadEntries selected by
//     workloadSelector). Port protocols come from appProtocol, else from the
//     port name prefix (http, http2, grpc, grpc-web, https, tcp, tls, ...);
//     anything else is TCP (Rosen does no protocol sniffing).
//   - DestinationRules applied to their host (an exact host wins over a
//     wildcard one; the longest wildcard wins among wildcards), subset
//     policies merged over the top-level policy field by field.
//   - Gateways with hosts defaulted to "*/host" and "./host" made
//     "<gateway namespace>/host".
//   - VirtualServices bound to "namespace/name" gateway keys (or "mesh"), with
//     every destination resolved to a service port, a subset and an Envoy
//     cluster name (outbound|port|subset|host).
//
// EndpointSlice labels: an EndpointSlice's endpoints do not carry their pods'
// labels, so Rosen applies the EndpointSlice's own metadata labels (minus the
// kubernetes.io ones such as kubernetes.io/service-name and
// endpointslice.kubernetes.io/managed-by) to every endpoint in it. Describe a
// static mesh with one EndpointSlice per version, labelled "version: v1", and
// DestinationRule subsets select them. When the set holds the Pod an
// endpoint's targetRef names (the Kubernetes source passes Pods, matched
// within the cluster of the topology.istio.io/cluster label), the Pod's
// labels are the endpoint's labels instead, as in Istio. The slice's
// topology.kubernetes.io/region label (or an endpoint's deprecatedTopology
// entry) gives the endpoints' region; the endpoint's zone gives the zone.
//
// Everything found wrong is reported together as model.Errors of
// *model.FieldError naming the file, the resource and the field; a set with
// any error yields no Mesh. Build is a pure function: no I/O, no clock.
package istio
