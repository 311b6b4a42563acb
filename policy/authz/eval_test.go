package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// lazyInputPolicy reads the input in the ways a policy can: single members,
// iteration, whole-object use, missing paths, ast values put in the input
// (version, jwt), JSON numbers.
const lazyInputPolicy = `package t

import rego.v1

part := {
	"method": input.attributes.request.http.method,
	"hdrs": {k: v | some k, v in input.attributes.request.http.headers},
	"q": input.parsed_query.x,
	"n": input.parsed_body.n,
	"l": input.parsed_body.l,
	"role": input.jwt.role,
	"aud0": input.jwt.aud[0],
	"ver": input.version.ext_authz,
	"keys": {k | some k, _ in input},
	"missing": object.get(input, ["attributes", "nope"], "none"),
	"port": input.attributes.source.address.socketAddress.portValue,
	"canon_len": count(input.canonical_path),
	"eq": input.version == {"ext_authz": "v3", "encoding": "protojson"},
}

whole := input
`

// TestLazyInputMatchesEager: Policy.Eval hands the input over as a lazy
// object; every way of reading it gives what the fully converted input
// gives (evaluated by OPA itself, not by a hand-written expectation).
func TestLazyInputMatchesEager(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "t.rego", lazyInputPolicy)
	build := func() map[string]any {
		in, err := BuildInput(checkRequest("POST", "/a%2Fb/../c?x=1&x=2", map[string]string{"content-type": "application/json"},
			`{"n": 1.50, "l": [1, "a", null, true, {"z": [2]}]}`), InputOptions{})
		if err != nil {
			t.Fatal(err)
		}
		in["version"] = versionValue
		in["jwt"] = ast.MustInterfaceToValue(map[string]any{"role": "r1", "aud": []any{"shop"}, "exp": json.Number("12")})
		return in
	}
	for _, q := range []string{"data.t.part", "data.t.whole"} {
		p, err := Load(context.Background(), dir, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Eval(context.Background(), build())
		if err != nil {
			t.Fatal(err)
		}
		eager, err := rego.New(rego.Query(q), rego.Module("t.rego", lazyInputPolicy),
			rego.ParsedInput(ast.MustInterfaceToValue(build()))).Eval(context.Background())
		if err != nil || len(eager) != 1 {
			t.Fatalf("eager evaluation: %v %v", eager, err)
		}
		want := eager[0].Expressions[0].Value
		if got == nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\nlazy  %v\neager %v", q, got, want)
		}
	}
}

// TestConcurrentChecks: concurrent Checks sharing one server (policy,
// token and claims caches, decision ring) are each answered with their own
// request's decision and logged once.
func TestConcurrentChecks(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "p.rego", header+"allow if { startswith(input.canonical_path, \"/ok/\") }\n")
	// A long policy deadline: under -race on a loaded machine a decision can
	// take longer than the default 100ms, which would be a (correct) deny.
	s := newTestServer(t, dir, Options{RingSize: 10000, Timeout: time.Minute})
	const goroutines, each = 64, 40
	errs := make(chan string, goroutines*each)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				allow := (g+i)%2 == 0
				path := fmt.Sprintf("/no/%d/%d", g, i)
				if allow {
					path = fmt.Sprintf("/ok/%d/%d", g, i)
				}
				resp, err := s.Check(context.Background(), checkRequest("GET", path, nil, ""))
				if err != nil || (httpStatus(resp) == 200) != allow {
					errs <- fmt.Sprintf("%s: status %d, err %v", path, httpStatus(resp), err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	seen := map[string]bool{}
	for _, e := range s.Decisions() {
		if seen[e.Path] || e.Allowed != strings.HasPrefix(e.Path, "/ok/") {
			t.Fatalf("decision log entry %+v (seen before: %v)", e, seen[e.Path])
		}
		seen[e.Path] = true
	}
	if len(seen) != goroutines*each {
		t.Fatalf("%d decisions logged, want %d", len(seen), goroutines*each)
	}
}
