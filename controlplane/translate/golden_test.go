package translate_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/istio"
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

var update = flag.Bool("update", false, "rewrite testdata/out from the current translation")

// goldenCase reads testdata/in/<case>.yaml. Its header comments choose the
// proxy ("# proxy: gateway istio=ingressgateway", "# proxy: proxyless",
// "# proxy: sidecar default") and may pull shared inputs
// ("# include: _services.yaml"), so each case's options sit in the case.
func goldenCase(t *testing.T, path string) (*model.Mesh, translate.Proxy) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p translate.Proxy
	var objs []*config.Object
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "# ") {
			break
		}
		key, val, _ := strings.Cut(strings.TrimPrefix(line, "# "), ":")
		fields := strings.Fields(val)
		switch key {
		case "proxy":
			p = parseProxy(t, fields)
		case "include":
			for _, f := range fields {
				inc := filepath.Join(filepath.Dir(path), f)
				b, err := os.ReadFile(inc)
				if err != nil {
					t.Fatal(err)
				}
				o, err := config.ParseYAML(filepath.ToSlash(inc), b)
				if err != nil {
					t.Fatalf("include %s: %v", f, err)
				}
				objs = append(objs, o...)
			}
		}
	}
	if p.Kind == "" {
		t.Fatalf("%s: no '# proxy:' header", path)
	}
	o, err := config.ParseYAML(filepath.ToSlash(path), data)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	set, errs := config.NewSet(append(objs, o...))
	if len(errs) > 0 {
		t.Fatalf("set: %v", errs)
	}
	m, err := istio.Build(set)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return m, p
}

func parseProxy(t *testing.T, f []string) translate.Proxy {
	if len(f) == 0 {
		t.Fatal("empty proxy header")
	}
	p := translate.Proxy{Labels: map[string]string{}}
	switch f[0] {
	case "gateway":
		p.Kind = translate.Gateway
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			p.Labels[k] = v
		}
	case "proxyless":
		// "proxyless NS ports=P,Q key=value…" is a proxyless gRPC server.
		p.Kind = translate.Proxyless
		if len(f) > 1 {
			p.Namespace = f[1]
		}
		for _, kv := range f[min(len(f), 2):] {
			k, v, _ := strings.Cut(kv, "=")
			if k != "ports" {
				p.Labels[k] = v
				continue
			}
			for _, n := range strings.Split(v, ",") {
				port, err := strconv.ParseUint(n, 10, 32)
				if err != nil {
					t.Fatalf("proxy header ports=%s: %v", v, err)
				}
				p.InboundPorts = append(p.InboundPorts, uint32(port))
			}
		}
	case "sidecar":
		p.Kind = translate.Sidecar
		if len(f) > 1 {
			p.Namespace = f[1]
		}
	default:
		t.Fatalf("unknown proxy kind %q", f[0])
	}
	return p
}

// toYAML renders resources as a YAML list via protojson, keys sorted.
func toYAML[M proto.Message](t *testing.T, list []M) []byte {
	t.Helper()
	raw := make([]json.RawMessage, 0, len(list))
	for _, m := range list {
		b, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b)
	}
	j, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

func TestGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, in := range cases {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		if strings.HasPrefix(name, "_") {
			continue
		}
		outputs := map[string][]byte{}
		t.Run(name, func(t *testing.T) {
			m, p := goldenCase(t, in)
			r, err := translate.Translate(m, p)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Resources(r); err != nil {
				t.Fatalf("translation does not validate:\n%v", err)
			}
			outputs["listeners"] = toYAML(t, r.Listeners)
			outputs["routes"] = toYAML(t, r.Routes)
			outputs["clusters"] = toYAML(t, r.Clusters)
			outputs["endpoints"] = toYAML(t, r.Endpoints)
			outputs["secrets"] = toYAML(t, r.Secrets)
			for typ, got := range outputs {
				file := filepath.Join("testdata/out", fmt.Sprintf("%s.%s.yaml", name, typ))
				want[file] = true
				if *update {
					if err := os.WriteFile(file, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				exp, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("%v (run go test ./controlplane/translate -update)", err)
				}
				if !bytes.Equal(exp, got) {
					t.Errorf("%s is stale; run go test ./controlplane/translate -update and review the diff.\ngot:\n%s", file, got)
				}
			}
		})
	}
	outs, _ := filepath.Glob("testdata/out/*.yaml")
	for _, f := range outs {
		if !want[filepath.ToSlash(f)] && !want[f] {
			if *update {
				_ = os.Remove(f)
				continue
			}
			t.Errorf("%s has no input case; run with -update to remove it", f)
		}
	}
}
