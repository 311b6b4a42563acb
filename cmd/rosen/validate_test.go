package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestValidateWithoutArgumentsOutsideTheRepo: like serve, validate with no
// folder and no examples/bookinfo here checks the built-in example.
func TestValidateWithoutArgumentsOutsideTheRepo(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("ROSEN_CONFIG", "")
	cmd := newValidateCommand(nil)
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("validate: %v\n%s", err, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "ok: built-in examples/bookinfo: 5 service(s)") ||
		!strings.Contains(errOut.String(), "checking the built-in example") {
		t.Fatalf("stdout %q, stderr %q", out.String(), errOut.String())
	}

	// A folder that is named and missing is still an error.
	cmd = newValidateCommand(nil)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"nowhere"})
	if err := cmd.Execute(); err == nil {
		t.Fatal("a missing folder passed")
	}
}
