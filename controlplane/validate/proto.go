package validate

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/rosenmesh/rosen/controlplane/translate"
)

type allValidator interface{ ValidateAll() error }

// pgvError is the shape of protoc-gen-validate's per-field errors.
type pgvError interface {
	Field() string
	Reason() string
	Cause() error
}

type multiError interface{ AllErrors() []error }

// protos runs ValidateAll on every resource and on every message packed in
// an Any anywhere inside it, and checks every regex on the way.
func (c *checker) protos() {
	for _, l := range c.res.Listeners {
		c.message(translate.KindListener, l.GetName(), l)
	}
	for _, r := range c.res.Routes {
		c.message(translate.KindRoute, r.GetName(), r)
	}
	for _, cl := range c.res.Clusters {
		c.message(translate.KindCluster, cl.GetName(), cl)
	}
	for _, e := range c.res.Endpoints {
		c.message(translate.KindEndpoint, e.GetClusterName(), e)
	}
	for _, s := range c.res.Secrets {
		c.message(translate.KindSecret, s.GetName(), s)
	}
}

func (c *checker) message(kind, name string, m proto.Message) {
	c.validateAll(kind, name, "", m)
	c.deep(kind, name, "", m.ProtoReflect())
}

// deep walks m, unpacking every Any (recursively) to validate its content.
func (c *checker) deep(kind, name, prefix string, m protoreflect.Message) {
	walk(m, prefix, func(path string, msg protoreflect.Message) {
		a, ok := msg.Interface().(*anypb.Any)
		if !ok {
			c.visit(kind, name, path, msg)
			return
		}
		inner, err := a.UnmarshalNew()
		if err != nil {
			c.fail(kind, name, path, "cannot unpack %s: %v", a.GetTypeUrl(), err)
			return
		}
		c.validateAll(kind, name, path, inner)
		c.deep(kind, name, path, inner.ProtoReflect())
	})
}

// visit applies per-message checks (regexes, cluster references).
func (c *checker) visit(kind, name, path string, msg protoreflect.Message) {
	c.clusterRef(kind, name, path, msg)
	if re, ok := regexOf(msg); ok {
		if err := checkRegex(re); err != nil {
			c.fail(kind, name, join(path, "regex"), "%v", err)
		}
	}
}

func (c *checker) validateAll(kind, name, prefix string, m proto.Message) {
	v, ok := m.(allValidator)
	if !ok {
		return
	}
	err := v.ValidateAll()
	if err == nil {
		return
	}
	for _, leaf := range flatten(err, prefix) {
		c.fail(kind, name, leaf.path, "%s", leaf.reason)
	}
}

type leafError struct{ path, reason string }

// flatten turns protoc-gen-validate's nested errors into field paths in
// proto (snake_case) names.
func flatten(err error, prefix string) []leafError {
	var me multiError
	if errors.As(err, &me) {
		var out []leafError
		for _, e := range me.AllErrors() {
			out = append(out, flatten(e, prefix)...)
		}
		return out
	}
	var pe pgvError
	if errors.As(err, &pe) {
		path := join(prefix, snakeField(pe.Field()))
		if pe.Cause() != nil {
			return flatten(pe.Cause(), path)
		}
		return []leafError{{path, pe.Reason()}}
	}
	return []leafError{{prefix, err.Error()}}
}

// snakeField turns "VirtualHosts[0]" into "virtual_hosts[0]" (keys kept).
func snakeField(f string) string {
	name, rest := f, ""
	if i := strings.IndexByte(f, '['); i >= 0 {
		name, rest = f[:i], f[i:]
	}
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 && name[i-1] != '_' {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String() + rest
}

func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	if field == "" {
		return prefix
	}
	return prefix + "." + field
}

// walk calls fn for every message reachable from m (m included), with its
// field path. It does not descend into Any values (fn unpacks them).
func walk(m protoreflect.Message, path string, fn func(string, protoreflect.Message)) {
	fn(path, m)
	if m.Descriptor().FullName() == "google.protobuf.Any" {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := join(path, string(fd.Name()))
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message(), fmt.Sprintf("%s[%d]", p, i), fn)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			mp := v.Map()
			keys := make([]protoreflect.MapKey, 0, mp.Len())
			mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool { keys = append(keys, k); return true })
			sortMapKeys(keys)
			for _, k := range keys {
				walk(mp.Get(k).Message(), fmt.Sprintf("%s[%s]", p, k.String()), fn)
			}
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			walk(v.Message(), p, fn)
		}
		return true
	})
}

func sortMapKeys(keys []protoreflect.MapKey) {
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j].String() < keys[j-1].String(); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}
