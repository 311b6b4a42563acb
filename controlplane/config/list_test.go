package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// TestKubectlListLoads: what `kubectl get virtualservices,destinationrules
// -o yaml` prints (testdata/kubectl-list.yaml) loads item by item, each at
// its own line.
func TestKubectlListLoads(t *testing.T) {
	path := filepath.Join("testdata", "kubectl-list.yaml")
	set, err := LoadDirs(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range set.Objects {
		got = append(got, fmt.Sprintf("%s %s/%s %s", o.Kind, o.Namespace, o.Name, o.Source().File))
	}
	want := []string{
		"DestinationRule bookinfo/productpage " + path + ":66",
		"DestinationRule bookinfo/reviews " + path + ":81",
		"VirtualService bookinfo/productpage " + path + ":4",
		"VirtualService bookinfo/reviews " + path + ":24",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("objects:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	vs := set.Objects[3].Spec.(*networking.VirtualService)
	if len(vs.GetHttp()) != 2 || vs.GetHttp()[1].GetTimeout().AsDuration().Seconds() != 10 || vs.GetHttp()[0].GetRoute()[0].GetDestination().GetSubset() != "v2" {
		t.Errorf("reviews VirtualService = %v", vs)
	}

	// The model builder's errors about an item point into the item.
	fe := model.Errorf(set.Objects[3].Source(), "spec.http[1].route[1].destination.subset", "no such subset")
	set.Locate(model.Errors{fe})
	if want := path + ":63"; fe.Source.File != want {
		t.Errorf("located at %s, want %s", fe.Source.File, want)
	}
}

// list wraps items (YAML, each starting "- ") in a kubectl List.
func list(items ...string) string {
	return "apiVersion: v1\nkind: List\nitems:\n" + strings.Join(items, "") + "metadata:\n  resourceVersion: \"\"\n"
}

const (
	itemVS  = "- apiVersion: networking.istio.io/v1\n  kind: VirtualService\n  metadata: {name: %s, namespace: shop}\n  spec:\n    hosts: [%s]\n    http:\n    - route: [{destination: {host: %s}}]\n"
	itemSvc = "- apiVersion: v1\n  kind: Service\n  metadata: {name: %s}\n  spec: {ports: [{port: %d}]}\n"
)

// svcDoc is a Service document of its own.
func svcDoc(name string, port int) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec: {ports: [{port: %d}]}\n", name, port)
}

func vsItem(name string) string            { return fmt.Sprintf(itemVS, name, name, name) }
func svcItem(name string, port int) string { return fmt.Sprintf(itemSvc, name, port) }

func TestListItems(t *testing.T) {
	t.Run("empty", func(t *testing.T) {
		for _, doc := range []string{list(), "apiVersion: v1\nkind: List\nitems:\n", "apiVersion: v1\nkind: List\nitems: []\n"} {
			objs, err := ParseYAML("f.yaml", []byte(doc))
			if err != nil || len(objs) != 0 {
				t.Errorf("%q: %d objects, %v", doc, len(objs), err)
			}
		}
	})
	t.Run("beside other documents, skipped kinds skipped", func(t *testing.T) {
		doc := svcDoc("first", 80) + "---\n" +
			list(vsItem("a"), "- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: a-v1}\n  spec: {replicas: 2}\n", svcItem("b", 81))
		set, err := LoadDirs(writeTemp(t, doc))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range append(set.Objects, set.Skipped...) {
			got = append(got, fmt.Sprintf("%s/%s@%d", o.Kind, o.Name, o.Line))
		}
		if want := "Service/b@20 Service/first@1 VirtualService/a@9 Deployment/a-v1@16"; strings.Join(got, " ") != want {
			t.Errorf("got %s, want %s", strings.Join(got, " "), want)
		}
	})
}

func writeTemp(t *testing.T, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.yaml")
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestListErrors(t *testing.T) {
	badField := "- apiVersion: networking.istio.io/v1\n  kind: VirtualService\n  metadata: {name: b}\n  spec:\n    hosts: [b]\n    htp: []\n"
	cases := []parseErrorCase{
		{"bad field in item 2 names item 2's line", list(vsItem("a"), badField),
			[]string{`f.yaml:16: VirtualService default/b: spec: unknown field "htp"`}},
		{"after another document", svcDoc("s", 80) + "---\n" + list(svcItem("a", 80), badField),
			[]string{`f.yaml:18: VirtualService default/b: spec: unknown field "htp"`}},
		{"unknown top-level field in an item", list(svcItem("a", 80), "- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n  spec: {ports: [{port: 80}]}\n  sepc: {}\n"),
			[]string{`f.yaml:12: Service default/b: unknown field "sepc"`}},
		{"unknown field in an Istio item", list("- apiVersion: networking.istio.io/v1\n  kind: Gateway\n  metadata: {name: g}\n  spec: {}\n  extra: 1\n"),
			[]string{`f.yaml:8: Gateway default/g: unknown field "extra"`}},
		{"item without a name", list(svcItem("a", 80), "- apiVersion: v1\n  kind: Service\n  metadata: {namespace: x}\n  spec: {ports: [{port: 80}]}\n"),
			[]string{`f.yaml:10: Service x/: items[1].metadata.name: required`}},
		{"unknown kind", list("- apiVersion: apps/v2\n  kind: Deployment\n  metadata: {name: d}\n"),
			[]string{`f.yaml:5: Deployment default/d: kind: unknown kind "Deployment" (apiVersion "apps/v2"); supported: ` + supportedKinds()}},
		{"item without a kind", list(svcItem("a", 80), "- apiVersion: v1\n  metadata: {name: k}\n"),
			[]string{`f.yaml:8: items[1].kind: required`}},
		{"item not a mapping", list("- just a string\n"),
			[]string{`f.yaml:4: items[0]: expected a resource: a mapping with apiVersion, kind and metadata`}},
		{"nested List", list(svcItem("a", 80), "- apiVersion: v1\n  kind: List\n  items: []\n"),
			[]string{`f.yaml:9: items[1].kind: a List inside a List is not supported: put its items in the outer List, or in documents of their own`}},
		{"every bad item reported", list(badField, svcItem("ok", 80), "- apiVersion: v1\n  kind: Secret\n  metadata: {name: s}\n  type: kubernetes.io/tls\n  data: {tls.crt: Y2VydA==}\n"),
			[]string{`f.yaml:9: VirtualService default/b: spec: unknown field "htp"`, `f.yaml:18: Secret default/s: data.tls.key: required (in data, base64, or stringData)`}},
		{"wrong List apiVersion", "apiVersion: v2\nkind: List\nitems: []\n",
			[]string{`f.yaml:1: apiVersion: unsupported apiVersion "v2" for kind List (want v1)`}},
		{"unknown List field", "apiVersion: v1\nkind: List\nitems: []\nitemz: []\n",
			[]string{`f.yaml:4: unknown field "itemz" in a List (it holds apiVersion, kind, metadata and items)`}},
		{"unknown List metadata", "apiVersion: v1\nkind: List\nmetadata:\n  name: x\nitems: []\n",
			[]string{`f.yaml:4: metadata: unknown field "name"`}},
		{"no items", "# list\napiVersion: v1\nkind: List\n",
			[]string{`f.yaml:2: items: required (the List's resources; [] for none)`}},
		{"items not a list", "apiVersion: v1\nkind: List\nitems: {a: 1}\n",
			[]string{`f.yaml:3: items: must be a list of resources`}},
		{"invalid YAML in an item", list(svcItem("a", 80), "- apiVersion: v1\n  kind: [\n"),
			[]string{`f.yaml:10: invalid YAML: did not find expected ',' or ']'`}},
	}
	checkParseErrors(t, cases)
}

// Duplicates are found across the items of a List, and between an item and
// a document of another file.
func TestListDuplicates(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), list(vsItem("r"), svcItem("s", 80), vsItem("r")))
	_, err := LoadDirs(dir)
	a := filepath.Join(dir, "a.yaml")
	want := a + ":15: VirtualService shop/r: metadata.name: duplicate VirtualService shop/r, first defined at " + a + ":4"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant %s", err, want)
	}
	write(t, filepath.Join(dir, "a.yaml"), list(vsItem("r"), svcItem("s", 80)))
	write(t, filepath.Join(dir, "b.yaml"), "# again\n"+svcDoc("s", 81))
	_, err = LoadDirs(dir)
	want = filepath.Join(dir, "b.yaml") + ":2: Service default/s: metadata.name: duplicate Service default/s, first defined at " + a + ":11"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant %s", err, want)
	}
}

// A List document is reused whole when unchanged and parsed whole when any
// item changed; one with a bad item is parsed (and reported) again.
func TestListReusing(t *testing.T) {
	v1 := svcDoc("top", 80) + "---\n" + list(svcItem("a", 80), svcItem("b", 80))
	first, err := ParseYAML("f.yaml", []byte(v1))
	if err != nil || len(first) != 3 {
		t.Fatalf("parse: %d objects, %v", len(first), err)
	}
	same, err := ParseYAMLReusing("f.yaml", []byte(v1), first)
	if err != nil || len(same) != 3 || same[0] != first[0] || same[1] != first[1] || same[2] != first[2] {
		t.Fatalf("unchanged file: %v, reused %v", err, same)
	}
	v2 := svcDoc("top", 80) + "---\n" + list(svcItem("a", 80), svcItem("b", 82))
	second, err := ParseYAMLReusing("f.yaml", []byte(v2), first)
	if err != nil || len(second) != 3 {
		t.Fatalf("reparse: %d objects, %v", len(second), err)
	}
	if second[0] != first[0] || second[2] == first[2] {
		t.Error("want the plain document reused and the List parsed again")
	}
	if p := second[2].Spec.(interface{ String() string }).String(); !strings.Contains(p, "Port:82") {
		t.Errorf("edited item: %s", p)
	}

	bad := list(svcItem("a", 80), "- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n  spec: {ports: [{prot: 1}]}\n")
	objs, err := ParseYAML("f.yaml", []byte(bad))
	if err == nil || len(objs) != 1 || objs[0].Name != "a" {
		t.Fatalf("bad item: %d objects, %v", len(objs), err)
	}
	again, err2 := ParseYAMLReusing("f.yaml", []byte(bad), objs)
	if err2 == nil || err2.Error() != err.Error() || len(again) != 1 {
		t.Fatalf("bad List parsed from cache: %d objects, %v", len(again), err2)
	}
}
