package translatebench

import (
	"bytes"
	"testing"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/runner"
	"github.com/rosenmesh/rosen/controlplane/xds"
)

// nopPublisher accepts every mesh: the benchmarks below time the runner's
// own part of a change (istio.Build, the gate), not the xDS caches.
type nopPublisher struct{}

func (nopPublisher) Update(*model.Mesh) error { return nil }
func (nopPublisher) Ready() bool              { return true }
func (nopPublisher) Status() xds.Status       { return xds.Status{} }

func parsedSet(b *testing.B, data []byte) *config.Set {
	objs, err := config.ParseYAML("bench.yaml", data)
	if err != nil {
		b.Fatal(err)
	}
	set, errs := config.NewSet(objs)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	return set
}

// benchApply alternates between two parsed sets of the 10k-route mesh
// (gateway and mesh routes) that differ as edit says, through
// runner.Apply: build, gate, publish.
func benchApply(b *testing.B, edit func([]byte) []byte) {
	base := meshYAML(true)
	applyAlternating(b, []*config.Set{parsedSet(b, base), parsedSet(b, edit(bytes.Clone(base)))})
}

// applyAlternating applies sets[0], then alternates between the two sets
// through runner.Apply, failing on any rejection.
func applyAlternating(b *testing.B, sets []*config.Set) {
	r := runner.New(zap.NewNop(), nil, nopPublisher{}, nil)
	r.Apply(sets[0], nil)
	i := 0
	loop(b, func() {
		i++
		r.Apply(sets[i%2], nil)
		if errs := r.ConfigErrors(); len(errs) > 0 {
			b.Fatal(errs[0])
		}
	})
}

// BenchmarkApplyEndpointChange10kRoutes: one endpoint address differs.
func BenchmarkApplyEndpointChange10kRoutes(b *testing.B) {
	benchApply(b, func(y []byte) []byte {
		return bytes.Replace(y, []byte(`"127.1.0.0"`), []byte(`"127.1.0.9"`), 1)
	})
}

// BenchmarkApplyRouteChange10kRoutes: one route's prefix differs.
func BenchmarkApplyRouteChange10kRoutes(b *testing.B) {
	benchApply(b, func(y []byte) []byte {
		return bytes.Replace(y, []byte(`prefix: /api/v0/`), []byte(`prefix: /api/v9/`), 1)
	})
}

// BenchmarkApplyEndpointSliceEdit10kRoutes: one EndpointSlice's address
// differs and the second set is parsed as the file source parses an edit
// (config.ParseYAMLReusing: unchanged documents keep their objects), so the
// runner takes the endpoint path (istio.RebuildEndpoints, the one service's
// load assignments) instead of Build and the whole-mesh gate.
func BenchmarkApplyEndpointSliceEdit10kRoutes(b *testing.B) {
	base := meshYAML(true)
	edited := bytes.Replace(bytes.Clone(base), []byte(`"127.1.0.0"`), []byte(`"127.1.0.9"`), 1)
	first, err := config.ParseYAML("bench.yaml", base)
	if err != nil {
		b.Fatal(err)
	}
	second, err := config.ParseYAMLReusing("bench.yaml", edited, first)
	if err != nil {
		b.Fatal(err)
	}
	var sets []*config.Set
	for _, objs := range [][]*config.Object{first, second} {
		set, errs := config.NewSet(objs)
		if len(errs) > 0 {
			b.Fatal(errs)
		}
		sets = append(sets, set)
	}
	applyAlternating(b, sets)
}
