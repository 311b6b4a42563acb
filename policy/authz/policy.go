package authz

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/rosenmesh/rosen/policy/folderwatch"
)

// ErrCompile is a policy folder that does not load or compile; the message
// lists every problem as file:line.
var ErrCompile = errors.New("authz: policy does not compile")

// DefaultQuery is OPA-Envoy's default decision path (envoy/authz/allow).
const DefaultQuery = "data.envoy.authz.allow"

// CheckFileSuffix names recorded CheckRequests (see `rosen policy test`);
// they sit beside the policies and are not data documents.
const CheckFileSuffix = ".check.json"

// Policy is one compiled version of a policy folder, its query prepared once.
type Policy struct {
	// Version is a digest of every file that went into it.
	Version string
	// Files are the loaded files, sorted.
	Files []string
	Query string
	// Compiler and Modules are kept for `rosen policy test`.
	Compiler *ast.Compiler
	Result   *loader.Result
	store    storage.Store
	prepared rego.PreparedEvalQuery
}

// skipFile excludes recorded checks and hidden files from the policy.
func skipFile(abspath string, info fs.FileInfo, _ int) bool {
	name := info.Name()
	if strings.HasPrefix(name, ".") && name != "." && name != ".." {
		return true
	}
	return !info.IsDir() && strings.HasSuffix(name, CheckFileSuffix)
}

// Load reads and compiles the Rego modules and data documents (JSON, YAML)
// under dir, and prepares query. Every parse or compile problem is reported
// as "file:line: message" in an error wrapping ErrCompile.
func Load(ctx context.Context, dir, query string) (*Policy, error) {
	if query == "" {
		query = DefaultQuery
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCompile, err)
	}
	if err := folderwatch.CheckTree(dir); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCompile, err)
	}
	res, err := loader.NewFileLoader().WithProcessAnnotation(true).Filtered([]string{dir}, skipFile)
	if err != nil {
		return nil, fmt.Errorf("%w:\n%s", ErrCompile, locate(err))
	}
	if len(res.Modules) == 0 {
		return nil, fmt.Errorf("%w: no .rego files under %s", ErrCompile, dir)
	}
	c, err := res.Compiler()
	if err != nil {
		return nil, fmt.Errorf("%w:\n%s", ErrCompile, locate(err))
	}
	store, err := res.Store()
	if err != nil {
		return nil, fmt.Errorf("%w: data: %w", ErrCompile, err)
	}
	pq, err := rego.New(rego.Compiler(c), rego.Store(store), rego.Query(query)).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: query %s:\n%s", ErrCompile, query, locate(err))
	}
	p := &Policy{Query: query, Compiler: c, Result: res, store: store, prepared: pq}
	p.Version, p.Files = digest(res)
	return p, nil
}

// digest hashes the loaded files' names and contents.
// The names are the files' paths as given (OPA keys modules by a form
// without the leading "/", which showed /tmp/p/authz.rego as tmp/p/authz.rego).
func digest(res *loader.Result) (string, []string) {
	var keys []string
	h := sha256.New()
	for name := range res.Modules {
		keys = append(keys, name)
	}
	sort.Strings(keys)
	files := make([]string, len(keys))
	for i, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write(res.Modules[k].Raw)
		h.Write([]byte{0})
		files[i] = k
		if n := res.Modules[k].Name; n != "" {
			files[i] = n
		}
	}
	docs := fmt.Sprintf("%v", res.Documents)
	h.Write([]byte(docs))
	return hex.EncodeToString(h.Sum(nil))[:12], files
}

// locate formats OPA errors as "file:line: message", one per line.
func locate(err error) string {
	var lines []string
	var add func(error)
	add = func(e error) {
		var astErrs ast.Errors
		var lerrs loader.Errors
		var one *ast.Error
		switch {
		case errors.As(e, &astErrs):
			for _, ae := range astErrs {
				add(ae)
			}
		case errors.As(e, &lerrs):
			for _, le := range lerrs {
				add(le)
			}
		case errors.As(e, &one):
			if one.Location != nil {
				lines = append(lines, fmt.Sprintf("%s:%d: %s", filepath.Clean(one.Location.File), one.Location.Row, one.Message))
			} else {
				lines = append(lines, one.Message)
			}
		default:
			lines = append(lines, e.Error())
		}
	}
	add(err)
	return strings.Join(lines, "\n")
}
