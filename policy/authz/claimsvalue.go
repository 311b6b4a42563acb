package authz

import (
	"reflect"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
)

// versionValue is versionInfo as the policy engine's value, built once.
var versionValue = ast.MustInterfaceToValue(versionInfo)

// claimsValues converts verified claims to the policy engine's value once
// per claims map. policy/jwt answers a token it has verified before with
// the same (never modified) map, so a client's token is converted on its
// first request only. Entries are keyed by the map's identity and hold the
// map, so a live key can never name another map.
type claimsValues struct {
	lru *lru.Cache[uintptr, claimsEntry]
}

type claimsEntry struct {
	claims map[string]any
	value  ast.Value
}

func newClaimsValues(size int) *claimsValues {
	c, _ := lru.New[uintptr, claimsEntry](size) // size > 0
	return &claimsValues{lru: c}
}

// value returns claims as an ast.Value (an ast.Value in the input document
// is taken as is by Policy.Eval).
func (c *claimsValues) value(claims map[string]any) (ast.Value, error) {
	key := reflect.ValueOf(claims).Pointer()
	if e, ok := c.lru.Get(key); ok && reflect.ValueOf(e.claims).Pointer() == key {
		return e.value, nil
	}
	v, err := ast.InterfaceToValue(claims)
	if err != nil {
		return nil, err
	}
	c.lru.Add(key, claimsEntry{claims: claims, value: v})
	return v, nil
}
