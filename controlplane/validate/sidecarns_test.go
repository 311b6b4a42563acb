package validate_test

import (
	"strings"
	"testing"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/istio"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

// A sidecar's routes depend on its namespace: a clash that only exists for
// sidecars in namespace c must be caught by the gate, not by the first
// sidecar that connects from c.
func TestMeshChecksSidecarsInEveryNamespace(t *testing.T) {
	objs, err := config.ParseYAML("a.yaml", []byte(`apiVersion: v1
kind: Service
metadata: {name: a, namespace: b}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: abc, namespace: c}
spec:
  hosts: [a.b.c.svc.cluster.local]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	set, errs := config.NewSet(objs)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	m, err := istio.Build(set)
	if err != nil {
		t.Fatal(err)
	}
	err = validate.Mesh(m)
	if err == nil || !strings.Contains(err.Error(), `domain "a.b" is already used`) {
		t.Fatalf("Mesh = %v, want the namespace-c sidecar's duplicate domain", err)
	}
}
