package config

import (
	"cmp"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// LoadDirs reads every *.yaml and *.yml file under the given folders
// (recursively, in lexical order, skipping hidden files and folders; a path
// may also name a single file) and returns the objects sorted by kind,
// namespace and name. Any problem in any file fails the whole load, with
// every problem reported (model.Errors); two objects with the same kind,
// namespace and name are an error naming both places.
func LoadDirs(dirs ...string) (*Set, error) {
	files, err := ListFiles(dirs...)
	if err != nil {
		return nil, err
	}
	var objs []*Object
	var errs model.Errors
	for _, f := range files {
		data, err := ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		o, err := ParseYAML(f, data)
		objs = append(objs, o...)
		if err != nil {
			if es, ok := err.(model.Errors); ok {
				errs = append(errs, es...)
			} else {
				errs = append(errs, err)
			}
		}
	}
	set, derrs := NewSet(objs)
	errs = append(errs, derrs...)
	if len(errs) > 0 {
		return nil, errs
	}
	return set, nil
}

// NewSet sorts objects by kind, namespace and name and reports duplicates.
func NewSet(objs []*Object) (*Set, model.Errors) {
	sorted := slices.Clone(objs)
	// Stable: of two duplicates, the one read first is kept.
	slices.SortStableFunc(sorted, func(a, b *Object) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	var errs model.Errors
	out := sorted[:0:0]
	var skipped []*Object
	for i, o := range sorted {
		if o.Skipped {
			skipped = append(skipped, o)
			continue
		}
		if i > 0 {
			p := sorted[i-1]
			if p.Kind == o.Kind && p.Namespace == o.Namespace && p.Name == o.Name {
				errs = append(errs, model.Errorf(o.Source(), "metadata.name", "duplicate %s %s/%s, first defined at %s", o.Kind, o.Namespace, o.Name, p.Source().File))
				continue
			}
		}
		out = append(out, o)
	}
	return &Set{Objects: out, Skipped: skipped}, errs
}

// ListFiles returns the YAML files LoadDirs reads, sorted and de-duplicated.
func ListFiles(dirs ...string) ([]string, error) {
	seen := map[string]bool{}
	var files []string
	for _, dir := range dirs {
		info, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("config path: %w", err)
		}
		if !info.IsDir() {
			if !seen[dir] {
				seen[dir] = true
				files = append(files, dir)
			}
			continue
		}
		err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path != dir && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || !IsConfigFile(path) {
				return nil
			}
			if !seen[path] {
				seen[path] = true
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("config folder %s: %w", dir, err)
		}
	}
	sort.Strings(files)
	return files, nil
}

// IsConfigFile reports whether a path names a file LoadDirs would read
// (a visible *.yaml or *.yml file).
func IsConfigFile(path string) bool {
	base := filepath.Base(path)
	if strings.HasPrefix(base, ".") {
		return false
	}
	ext := strings.ToLower(filepath.Ext(base))
	return ext == ".yaml" || ext == ".yml"
}
