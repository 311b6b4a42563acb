package translatebench

import (
	"testing"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

// The runner's gate for a change of the 10,000-route mesh (gateway and
// proxyless routes both present): the structure hash, then either the full
// gate (validate.Mesh translates and validates every proxy kind) or, for an
// endpoint-only change, validate.MeshEndpoints (load assignments only).
func benchGate(b *testing.B, gate func(*model.Mesh) error) {
	m := buildMesh(b, true)
	loop(b, func() {
		if _, err := model.StructureHash(m); err != nil {
			b.Fatal(err)
		}
		if gate == nil {
			return
		}
		if err := gate(m); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkGateFull10kRoutes(b *testing.B)      { benchGate(b, validate.Mesh) }
func BenchmarkGateEndpoints10kRoutes(b *testing.B) { benchGate(b, validate.MeshEndpoints) }
func BenchmarkStructureHash10kRoutes(b *testing.B) { benchGate(b, nil) }
