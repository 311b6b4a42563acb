package runner

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// scripted delivers the given results, one per step, when told to.
type scripted struct {
	steps chan func(func(*config.Set, error))
}

func (s *scripted) Run(ctx context.Context, on func(*config.Set, error)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-s.steps:
			f(on)
		}
	}
}

func TestMergeWaitsForEverySourceThenUnites(t *testing.T) {
	a := &scripted{steps: make(chan func(func(*config.Set, error)))}
	b := &scripted{steps: make(chan func(func(*config.Set, error)))}
	var mu sync.Mutex
	var got []string
	seen := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = Merge(a, b).Run(ctx, func(set *config.Set, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				got = append(got, "error: "+err.Error())
			} else {
				var names []string
				for _, o := range set.Objects {
					names = append(names, o.Name)
				}
				got = append(got, strings.Join(names, ","))
			}
			seen <- struct{}{}
		})
	}()
	setOf := func(file, doc string) func(func(*config.Set, error)) {
		return func(on func(*config.Set, error)) { on(parse(t, file, doc), nil) }
	}
	svc := func(name string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + "}\nspec: {ports: [{name: http, port: 80}]}\n"
	}
	a.steps <- setOf("a.yaml", svc("one"))
	b.steps <- setOf("b.yaml", svc("two"))
	<-seen
	b.steps <- func(on func(*config.Set, error)) { on(nil, errors.New("cluster b broke")) }
	<-seen
	b.steps <- setOf("b.yaml", svc("one")) // the same Service as a.yaml
	<-seen
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || got[0] != "one,two" || !strings.Contains(got[1], "cluster b broke") ||
		!strings.Contains(got[2], "duplicate Service default/one") {
		t.Fatalf("emissions: %q", got)
	}
}

func TestIsolationDropsOnlyIsolatableObjects(t *testing.T) {
	pub := &recordingPublisher{}
	r := New(zap.NewNop(), noSource{}, pub, nil)
	var reported []*model.FieldError
	r.SetIsolation(Isolation{
		Isolatable: func(o *config.Object) bool { return strings.HasPrefix(o.File, "kube://") },
		Report:     func(errs []*model.FieldError) { reported = errs },
	})
	objs, err := config.ParseYAML("svc.yaml", []byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := config.ParseYAML("vs.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: dangling}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: nowhere}}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	// From a file, the bad VirtualService rejects the change.
	set, _ := config.NewSet(append(append([]*config.Object(nil), objs...), bad...))
	r.Apply(set, nil)
	if len(pub.meshes) != 0 || len(r.ConfigErrors()) == 0 {
		t.Fatalf("file object was isolated: meshes %d errors %v", len(pub.meshes), r.ConfigErrors())
	}
	// From a cluster, it is left out and reported; the rest applies.
	bad[0].File, bad[0].Line = "kube://a", 0
	set, _ = config.NewSet(append(append([]*config.Object(nil), objs...), bad...))
	r.Apply(set, nil)
	if len(pub.meshes) != 1 || len(r.ConfigErrors()) != 0 {
		t.Fatalf("cluster object not isolated: meshes %d errors %v", len(pub.meshes), r.ConfigErrors())
	}
	if len(reported) != 1 || reported[0].Source.Name != "dangling" || !strings.Contains(reported[0].Message, "nowhere") {
		t.Fatalf("reported: %v", reported)
	}
	if len(pub.meshes[0].VirtualServices) != 0 || len(pub.meshes[0].Services) != 1 {
		t.Fatalf("mesh: %+v", pub.meshes[0])
	}
}
