package validate

import (
	"errors"
	"strings"
	"unicode"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

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
		c.sharedMessage(translate.KindCluster, cl.GetName(), cl)
	}
	for _, e := range c.res.Endpoints {
		c.sharedMessage(translate.KindEndpoint, e.GetClusterName(), e)
	}
	for _, s := range c.res.Secrets {
		c.message(translate.KindSecret, s.GetName(), s)
	}
}

// sharedMessage is message for a value other proxies may share
// (translate.Shared): checked once, and remembered only when it passed, so
// a bad value is reported through every proxy that has it.
func (c *checker) sharedMessage(kind, name string, m proto.Message) {
	if c.shared.Checked(m) {
		return
	}
	before := len(c.errs)
	c.message(kind, name, m)
	if len(c.errs) == before {
		c.shared.MarkChecked(m)
	}
}

// message validates one resource: ValidateAll, then the type-directed walk
// (walk.go) that unpacks every Any and applies visit's checks.
func (c *checker) message(kind, name string, m proto.Message) {
	c.validateAll(kind, name, "", m)
	w := walker{c: c, kind: kind, name: name}
	w.message(m.ProtoReflect())
}

// visit applies per-message checks (regexes, cluster references).
func (c *checker) visit(kind, name, path string, msg protoreflect.Message) {
	c.clusterRef(kind, name, path, msg)
	if re, ok := regexOf(msg); ok {
		if err := c.regexError(re); err != nil {
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

func sortMapKeys(keys []protoreflect.MapKey) {
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j].String() < keys[j-1].String(); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}
