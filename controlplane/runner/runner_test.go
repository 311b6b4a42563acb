package runner

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/xds"
)

type recordingPublisher struct {
	meshes []*model.Mesh
	fail   error
}

func (p *recordingPublisher) Update(m *model.Mesh) error {
	if p.fail != nil {
		return p.fail
	}
	p.meshes = append(p.meshes, m)
	return nil
}
func (p *recordingPublisher) Ready() bool        { return len(p.meshes) > 0 }
func (p *recordingPublisher) Status() xds.Status { return xds.Status{} }

type noSource struct{}

func (noSource) Run(context.Context, func(*config.Set, error)) error { return nil }

func parse(t *testing.T, file, doc string) *config.Set {
	t.Helper()
	objs, err := config.ParseYAML(file, []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	set, errs := config.NewSet(objs)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return set
}

const goodConfig = `apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  ports:
  - name: http
    port: 9080
`

const danglingRoute = goodConfig + `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: ratings
`

func TestRejectedSetKeepsLastGoodAndIsReported(t *testing.T) {
	pub := &recordingPublisher{}
	r := New(zap.NewNop(), noSource{}, pub, nil)

	r.Apply(parse(t, "good.yaml", goodConfig), nil)
	if len(pub.meshes) != 1 || len(r.ConfigErrors()) != 0 || !r.Ready() {
		t.Fatalf("good config: published %d, errors %v", len(pub.meshes), r.ConfigErrors())
	}

	r.Apply(parse(t, "bad.yaml", danglingRoute), nil)
	if len(pub.meshes) != 1 {
		t.Fatal("a config with a dangling route reached the publisher")
	}
	errs := r.ConfigErrors()
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Source.File, "bad.yaml") || errs[0].Field != "spec.http[0].route[0].destination.host" {
		t.Fatalf("errors: %+v", errs)
	}

	// A source error (unparseable file) is reported the same way.
	r.Apply(nil, model.Errors{model.Errorf(model.Source{File: "x.yaml:1"}, "", "malformed")})
	if errs := r.ConfigErrors(); len(errs) != 1 || errs[0].Source.File != "x.yaml:1" {
		t.Fatalf("source error: %+v", errs)
	}

	// A publisher rejection (the xDS gate) too; then a good set clears it.
	pub.fail = errors.New("gate says no")
	r.Apply(parse(t, "good.yaml", goodConfig), nil)
	if errs := r.ConfigErrors(); len(errs) != 1 || errs[0].Message != "gate says no" {
		t.Fatalf("publisher error: %+v", errs)
	}
	pub.fail = nil
	r.Apply(parse(t, "good.yaml", goodConfig), nil)
	if errs := r.ConfigErrors(); len(errs) != 0 || len(pub.meshes) != 2 {
		t.Fatalf("after recovery: errors %v, published %d", errs, len(pub.meshes))
	}
	doc := r.Syncz().(map[string]any)["config"].(map[string]any)
	if doc["accepted"] != 2 || doc["rejected"] != 3 {
		t.Fatalf("syncz counts: %v", doc)
	}
}
