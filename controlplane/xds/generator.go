package xds

import (
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

// MeshGenerator is the production Generator: controlplane/translate for the
// resources and controlplane/validate as the gate.
type MeshGenerator struct{}

var (
	_ Generator       = MeshGenerator{}
	_ SharedGenerator = MeshGenerator{}
)

// TranslateShared implements SharedGenerator.
func (MeshGenerator) TranslateShared(m *model.Mesh, p translate.Proxy, sh *translate.Shared) (*translate.Resources, error) {
	return translate.TranslateShared(m, p, sh)
}

// ValidateShared implements SharedGenerator.
func (MeshGenerator) ValidateShared(r *translate.Resources, sh *translate.Shared) error {
	return validate.ResourcesShared(r, sh)
}

// Translate implements Generator.
func (MeshGenerator) Translate(m *model.Mesh, p translate.Proxy) (*translate.Resources, error) {
	return translate.Translate(m, p)
}

// Endpoints implements Generator.
func (MeshGenerator) Endpoints(m *model.Mesh, clusters []string) []*endpointv3.ClusterLoadAssignment {
	return translate.Endpoints(m, clusters)
}

// Validate implements Generator.
func (MeshGenerator) Validate(r *translate.Resources) error { return validate.Resources(r) }

// DefaultGenerator returns the production Generator (MeshGenerator).
func DefaultGenerator() Generator { return MeshGenerator{} }
