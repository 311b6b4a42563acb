package xds

import (
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/rosenmesh/rosen/controlplane/translate"
)

// servedTypes are the resource types Rosen serves, in the order Envoy wants
// them pushed (clusters before endpoints, listeners before routes).
var servedTypes = []string{
	resourcev3.ClusterType,
	resourcev3.EndpointType,
	resourcev3.ListenerType,
	resourcev3.RouteType,
	resourcev3.SecretType,
}

// typeName is the short name of a type URL used in status and metric labels.
func typeName(typeURL string) string {
	switch typeURL {
	case resourcev3.ListenerType:
		return "LDS"
	case resourcev3.RouteType:
		return "RDS"
	case resourcev3.ClusterType:
		return "CDS"
	case resourcev3.EndpointType:
		return "EDS"
	case resourcev3.SecretType:
		return "SDS"
	default:
		return "other"
	}
}

func isServed(typeURL string) bool {
	for _, t := range servedTypes {
		if t == typeURL {
			return true
		}
	}
	return false
}

// byType splits translated resources by type URL and name.
func byType(r *translate.Resources) map[string]map[string]types.Resource {
	out := make(map[string]map[string]types.Resource, len(servedTypes))
	for _, t := range servedTypes {
		out[t] = map[string]types.Resource{}
	}
	if r == nil {
		return out
	}
	for _, x := range r.Listeners {
		out[resourcev3.ListenerType][x.GetName()] = x
	}
	for _, x := range r.Routes {
		out[resourcev3.RouteType][x.GetName()] = x
	}
	for _, x := range r.Clusters {
		out[resourcev3.ClusterType][x.GetName()] = x
	}
	for _, x := range r.Endpoints {
		out[resourcev3.EndpointType][x.GetClusterName()] = x
	}
	for _, x := range r.Secrets {
		out[resourcev3.SecretType][x.GetName()] = x
	}
	return out
}
