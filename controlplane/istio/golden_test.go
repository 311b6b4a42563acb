package istio

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosenmesh/rosen/controlplane/config"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from the current output")

// TestGolden builds testdata/bookinfo-services.yaml plus each
// testdata/golden/<case>.yaml and compares the JSON of the Mesh with
// testdata/golden/<case>.json (go test -run Golden -update rewrites them).
func TestGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/golden/*.yaml")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, in := range cases {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			set, err := config.LoadDirs("testdata/bookinfo-services.yaml", in)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Build(set)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			out := strings.TrimSuffix(in, ".yaml") + ".json"
			if *update {
				if err := os.WriteFile(out, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the built mesh (run with -update and review the diff)\n%s", out, got)
			}
		})
	}
}
