package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// fieldLine returns the 1-based line in the file of the field at path
// ("spec.http[1].match[0].uri.regex") in a document, or of its deepest
// existing ancestor; 0 when the document cannot be read.
func fieldLine(text []byte, firstLine int, path string) int {
	if path == "" || len(text) == 0 {
		return 0
	}
	var root yaml.Node
	if err := yaml.Unmarshal(text, &root); err != nil || len(root.Content) == 0 {
		return 0
	}
	n := root.Content[0]
	line := n.Line
	for _, seg := range splitFieldPath(path) {
		n = child(n, seg)
		if n == nil {
			break
		}
		line = n.Line
	}
	return line + firstLine - 1
}

// pathSegment is one step of a field path: a mapping key or a list index.
type pathSegment struct {
	key   string
	index int // -1 for a key
}

var indexRE = regexp.MustCompile(`\[(\d+|"[^"]*")\]`)

func splitFieldPath(path string) []pathSegment {
	var out []pathSegment
	for _, part := range strings.Split(path, ".") {
		key := part
		var idx []string
		if i := strings.IndexByte(part, '['); i >= 0 {
			key = part[:i]
			for _, m := range indexRE.FindAllStringSubmatch(part[i:], -1) {
				idx = append(idx, m[1])
			}
		}
		if key != "" {
			out = append(out, pathSegment{key: key, index: -1})
		}
		for _, s := range idx {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, pathSegment{index: n})
			} else {
				out = append(out, pathSegment{key: strings.Trim(s, `"`), index: -1})
			}
		}
	}
	return out
}

func child(n *yaml.Node, seg pathSegment) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil {
		return nil
	}
	switch {
	case seg.index >= 0 && n.Kind == yaml.SequenceNode:
		if seg.index < len(n.Content) {
			return n.Content[seg.index]
		}
	case seg.index < 0 && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == seg.key {
				// A scalar value is reported on its key's line; a block on its key too.
				k := n.Content[i]
				v := n.Content[i+1]
				if v.Line == k.Line || v.Kind == yaml.ScalarNode {
					return &yaml.Node{Kind: v.Kind, Line: k.Line, Content: v.Content, Value: v.Value, Alias: v.Alias}
				}
				return &yaml.Node{Kind: v.Kind, Line: k.Line, Content: v.Content, Alias: v.Alias}
			}
		}
	}
	return nil
}

// unknownFieldRE finds the key named by "unknown field" errors, whose Field
// is the parent object: the key's own line is more useful.
var unknownFieldRE = regexp.MustCompile(`^unknown field "([^"]+)"`)

// locate points a FieldError at its field's line instead of the document's.
// A List item's fields are found under its path in the List document.
func (o *Object) locate(fe *model.FieldError) {
	if o.text == nil || (fe.Field == "" && o.item == "") {
		return
	}
	path := fe.Field
	if m := unknownFieldRE.FindStringSubmatch(fe.Message); m != nil {
		path = strings.TrimPrefix(path+"."+m[1], ".")
	}
	if o.item != "" && path != o.item && !strings.HasPrefix(path, o.item+".") {
		path = strings.TrimSuffix(o.item+"."+path, ".")
	}
	if line := fieldLine(o.text, o.firstLine, path); line > 0 {
		fe.Source.File = fmt.Sprintf("%s:%d", o.File, line)
	}
}

// Locate rewrites the FieldErrors in err that belong to objects of this set
// so that their line is the field's own line, not its document's first line.
// The model builder reports errors against documents; this makes them point
// at the exact line to fix.
func (s *Set) Locate(err error) error {
	if err == nil || s == nil {
		return err
	}
	// By "file:line"; the items of a List written on one line share it,
	// so the error's resource picks among them.
	byLine := make(map[string][]*Object, len(s.Objects))
	for _, o := range s.Objects {
		byLine[o.Source().File] = append(byLine[o.Source().File], o)
	}
	byDoc := func(src model.Source) *Object {
		os := byLine[src.File]
		for _, o := range os {
			if o.Source() == src {
				return o
			}
		}
		if len(os) > 0 {
			return os[0]
		}
		return nil
	}
	var es model.Errors
	if !errors.As(err, &es) {
		var fe *model.FieldError
		if errors.As(err, &fe) {
			if o := byDoc(fe.Source); o != nil {
				o.locate(fe)
			}
		}
		return err
	}
	for _, e := range es {
		var fe *model.FieldError
		if errors.As(e, &fe) {
			if o := byDoc(fe.Source); o != nil {
				o.locate(fe)
			}
		}
	}
	return err
}
