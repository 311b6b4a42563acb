package validate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/rosenmesh/rosen/controlplane/translate"
)

// BootstrapClusters are clusters every Rosen proxy's bootstrap defines, so
// configs may name them without an xDS Cluster: xds-grpc reaches Rosen
// itself (ext_authz and the rate-limit service call back through it).
var BootstrapClusters = map[string]bool{translate.RosenCluster: true}

// clusterRef checks the cluster references Envoy resolves when it loads a
// typed config, wherever they sit (HTTP filters, tracers, access logs):
// an HttpUri's cluster (jwt_authn remote_jwks, OAuth2 endpoints) and an
// Envoy gRPC service's cluster_name (ext_authz, ratelimit, gRPC access logs).
// Envoy rejects a filter whose cluster it does not know, and the listener
// with it.
func (c *checker) clusterRef(kind, name, path string, msg protoreflect.Message) {
	var field, cluster string
	switch m := msg.Interface().(type) {
	case *corev3.HttpUri:
		field, cluster = "cluster", m.GetCluster()
	case *corev3.GrpcService_EnvoyGrpc:
		field, cluster = "cluster_name", m.GetClusterName()
	default:
		return
	}
	if cluster == "" || BootstrapClusters[cluster] || c.clusterSet()[cluster] {
		return // an empty name is reported by ValidateAll
	}
	c.fail(kind, name, join(path, field), "cluster %q does not exist (neither an xDS cluster nor a bootstrap cluster)", cluster)
}

// clusterSet is the names of the proxy's clusters, built once.
func (c *checker) clusterSet() map[string]bool {
	if c.clusterNames == nil {
		c.clusterNames = make(map[string]bool, len(c.res.Clusters))
		for _, cl := range c.res.Clusters {
			c.clusterNames[cl.GetName()] = true
		}
	}
	return c.clusterNames
}
