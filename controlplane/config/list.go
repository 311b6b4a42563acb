package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// KindList is the kind of what `kubectl get a,b -o yaml` prints: apiVersion
// v1, the resources under items.
const KindList = "List"

// listTopLevel and listMetadata are the keys a List may carry (kubectl
// prints metadata: {resourceVersion: ""}, older versions a selfLink too);
// list metadata is ignored.
var (
	listTopLevel = map[string]bool{"apiVersion": true, "kind": true, "metadata": true, "items": true}
	listMetadata = map[string]bool{"resourceVersion": true, "selfLink": true, "continue": true, "remainingItemCount": true}
)

// isList reports whether a document's kind is List.
func isList(top map[string]json.RawMessage) bool {
	var kind string
	return json.Unmarshal(top["kind"], &kind) == nil && kind == KindList
}

// parseList parses a `kind: List` document (doc holds its position and
// text): each item as if it were a document of its own at the item's line,
// its errors naming that line and the item's resource (and, when the item
// names none, "items[i]" in the field). Items that parse are returned even
// when others fail, marked partial so that the document is parsed again.
func parseList(doc *Object, top map[string]json.RawMessage) ([]*Object, model.Errors) {
	at := func(line int) model.Source {
		if line <= 0 {
			line = doc.Line
		}
		return model.Source{File: fmt.Sprintf("%s:%d", doc.File, line)}
	}
	fieldAt := func(path string) model.Source { return at(fieldLine(doc.text, doc.firstLine, path)) }
	var errs model.Errors
	var apiVersion string
	if err := stringField(top, "apiVersion", &apiVersion); err != nil {
		errs = append(errs, model.Errorf(fieldAt("kind"), "apiVersion", "%v (v1 for kind List)", err))
	} else if apiVersion != "v1" {
		errs = append(errs, model.Errorf(fieldAt("apiVersion"), "apiVersion", "unsupported apiVersion %q for kind List (want v1)", apiVersion))
	}
	for _, k := range sortedKeys(top) {
		if !listTopLevel[k] {
			errs = append(errs, model.Errorf(fieldAt(k), "", "unknown field %q in a List (it holds apiVersion, kind, metadata and items)", k))
		}
	}
	if raw, ok := top["metadata"]; ok && string(raw) != "null" {
		var md map[string]json.RawMessage
		if json.Unmarshal(raw, &md) != nil {
			errs = append(errs, model.Errorf(fieldAt("metadata"), "metadata", "must be a mapping"))
		}
		for _, k := range sortedKeys(md) {
			if !listMetadata[k] {
				errs = append(errs, model.Errorf(fieldAt("metadata."+k), "metadata", "unknown field %q", k))
			}
		}
	}
	var items []json.RawMessage
	switch raw, ok := top["items"]; {
	case !ok:
		errs = append(errs, model.Errorf(at(0), "items", "required (the List's resources; [] for none)"))
	case json.Unmarshal(raw, &items) != nil:
		errs = append(errs, model.Errorf(fieldAt("items"), "items", "must be a list of resources"))
	}
	if len(errs) > 0 {
		return nil, errs
	}

	lines := listItemLines(doc.text, doc.firstLine)
	var objs []*Object
	for i, raw := range items {
		o := &Object{File: doc.File, Line: doc.Line, text: doc.text, firstLine: doc.firstLine, item: fmt.Sprintf("items[%d]", i)}
		if i < len(lines) {
			o.Line = lines[i]
		}
		ierrs := o.decodeItem(raw)
		if len(ierrs) == 0 {
			objs = append(objs, o)
			continue
		}
		o.locateAll(ierrs)
		for _, e := range ierrs {
			// An item without a name is told by its index.
			var fe *model.FieldError
			if errors.As(e, &fe) && fe.Source.Name == "" && fe.Field != o.item && !strings.HasPrefix(fe.Field, o.item+".") {
				fe.Field = joinField(o.item, fe.Field)
			}
		}
		errs = append(errs, ierrs...)
	}
	if len(errs) > 0 {
		for _, o := range objs {
			o.partial = true
		}
	}
	return objs, errs
}

// decodeItem fills o from one item of a List.
func (o *Object) decodeItem(raw json.RawMessage) model.Errors {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		return model.Errors{model.Errorf(o.Source(), o.item, "expected a resource: a mapping with apiVersion, kind and metadata")}
	}
	if isList(top) {
		return model.Errors{model.Errorf(o.Source(), o.item+".kind", "a List inside a List is not supported: put its items in the outer List, or in documents of their own")}
	}
	return o.decode(raw, top)
}

// listItemLines returns the line in the file of each item of a List
// document, read once for all items (nil when the YAML cannot be read).
func listItemLines(text []byte, firstLine int) []int {
	var root yaml.Node
	if err := yaml.Unmarshal(text, &root); err != nil || len(root.Content) == 0 {
		return nil
	}
	n := child(root.Content[0], pathSegment{key: "items", index: -1})
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	lines := make([]int, len(n.Content))
	for i, it := range n.Content {
		lines[i] = it.Line + firstLine - 1
	}
	return lines
}
