package authz

import (
	"fmt"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The same claims map is converted once; every other map gets its own
// value, also after the cache has turned over.
func TestClaimsValues(t *testing.T) {
	c := newClaimsValues(4)
	alice := map[string]any{"sub": "alice", "role": "r1"}
	v1, err := c.value(alice)
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := c.value(alice)
	if v1 != v2 {
		t.Fatal("the same map was converted twice")
	}
	for i := 0; i < 20; i++ {
		m := map[string]any{"sub": fmt.Sprint("u", i)}
		v, err := c.value(m)
		if err != nil {
			t.Fatal(err)
		}
		want := ast.MustInterfaceToValue(m)
		if v.Compare(want) != 0 {
			t.Fatalf("map %d: got %v, want %v", i, v, want)
		}
	}
	v3, _ := c.value(alice)
	if v3.Compare(ast.MustInterfaceToValue(alice)) != 0 {
		t.Fatalf("alice after turnover: %v", v3)
	}
	if _, err := c.value(map[string]any{"bad": make(chan int)}); err == nil {
		t.Fatal("unconvertible claims accepted")
	}
}
