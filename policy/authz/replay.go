package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/tester"
	"google.golang.org/protobuf/encoding/protojson"
)

// ErrCheckFile is a recorded-check file that cannot be read.
var ErrCheckFile = errors.New("authz: bad check file")

// CheckCase is one recorded CheckRequest and the decision expected for it.
// A *.check.json file holds one case or a JSON array of cases.
type CheckCase struct {
	Name    string          `json:"name"`
	Request json.RawMessage `json:"request"` // envoy.service.auth.v3.CheckRequest as protobuf JSON
	// JWT, when set, stands for the claims a verified token would give (input.jwt).
	JWT    map[string]any `json:"jwt,omitempty"`
	Expect struct {
		Allowed bool `json:"allowed"`
		Status  int  `json:"status,omitempty"` // checked when set
	} `json:"expect"`
	file string
}

// CaseResult is the outcome of one replayed case or Rego test.
type CaseResult struct {
	Name   string
	File   string
	Pass   bool
	Detail string
	Time   time.Duration
}

// RunRegoTests runs the test_ rules of the policy with OPA's test semantics.
func RunRegoTests(ctx context.Context, p *Policy) ([]CaseResult, error) {
	ch, err := tester.NewRunner().SetCompiler(p.Compiler).SetModules(p.Result.ParsedModules()).
		SetStore(p.store).SetTimeout(10*time.Second).RaiseBuiltinErrors(true).RunTests(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("rego tests: %w", err)
	}
	var out []CaseResult
	for r := range ch {
		cr := CaseResult{Name: r.Package + "." + r.Name, File: r.Location.File, Pass: r.Pass(), Time: r.Duration}
		switch {
		case r.Error != nil:
			cr.Detail = r.Error.Error()
		case r.Fail:
			cr.Detail = "test rule is false or undefined"
		case r.Skip:
			cr.Pass, cr.Detail = true, "skipped"
		}
		out = append(out, cr)
	}
	return out, nil
}

// LoadChecks reads every *.check.json under dir.
func LoadChecks(dir string) ([]CheckCase, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), CheckFileSuffix) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckFile, err)
	}
	sort.Strings(files)
	var out []CheckCase
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCheckFile, err)
		}
		var cases []CheckCase
		trimmed := strings.TrimSpace(string(data))
		if strings.HasPrefix(trimmed, "[") {
			err = json.Unmarshal(data, &cases)
		} else {
			var one CheckCase
			err = json.Unmarshal(data, &one)
			cases = []CheckCase{one}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCheckFile, f, err)
		}
		for i := range cases {
			cases[i].file = f
			if cases[i].Name == "" {
				cases[i].Name = fmt.Sprintf("%s#%d", filepath.Base(f), i)
			}
		}
		out = append(out, cases...)
	}
	return out, nil
}

// staticClaims is a TokenVerifier that answers with fixed claims.
type staticClaims map[string]any

func (s staticClaims) Verify(context.Context, map[string]string, url.Values) (map[string]any, error) {
	if len(s) == 0 {
		return nil, nil
	}
	return s, nil
}

// Replay runs each recorded CheckRequest through a Server holding p (the
// whole Check path: input, canonical path, evaluation, result decoding) and
// compares the decision with the expected one.
func Replay(ctx context.Context, p *Policy, cases []CheckCase) []CaseResult {
	out := make([]CaseResult, 0, len(cases))
	for _, c := range cases {
		start := time.Now()
		r := CaseResult{Name: c.Name, File: c.file}
		var req authv3.CheckRequest
		if err := protojson.Unmarshal(c.Request, &req); err != nil {
			r.Detail = fmt.Sprintf("request is not a CheckRequest: %v", err)
			out = append(out, r)
			continue
		}
		s := New(Options{Tokens: staticClaims(c.JWT), RingSize: 1})
		s.SetPolicy(p)
		resp, _ := s.Check(ctx, &req)
		allowed := resp.GetOkResponse() != nil
		status := 200
		if !allowed {
			status = int(resp.GetDeniedResponse().GetStatus().GetCode())
		}
		r.Time = time.Since(start)
		switch {
		case allowed != c.Expect.Allowed:
			r.Detail = fmt.Sprintf("allowed=%v, want %v (%s)", allowed, c.Expect.Allowed, resp.GetStatus().GetMessage())
		case c.Expect.Status != 0 && status != c.Expect.Status:
			r.Detail = fmt.Sprintf("status %d, want %d (%s)", status, c.Expect.Status, resp.GetStatus().GetMessage())
		default:
			r.Pass = true
		}
		out = append(out, r)
	}
	return out
}
