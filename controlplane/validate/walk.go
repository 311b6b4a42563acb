package validate

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// The deep walk is directed by the message types: for each type it visits
// only the fields through which a checked message (or an Any, whose content
// must be unpacked and validated) can be reached, and it builds a field
// path string only when a check needs one. A RouteConfiguration's
// durations, wrappers, header values and the like are never entered.
// Which fields lead where is the walk plan (walkplan.go).

// pathSeg is one step of a field path: a field name, with a list index or
// a map key when the step enters an element.
type pathSeg struct {
	name  string
	index int // -1 when none
	key   string
	isKey bool
}

// walker walks one resource; path is a stack, rendered on demand.
type walker struct {
	c          *checker
	kind, name string
	path       []pathSeg
}

func (w *walker) pathString() string {
	var b strings.Builder
	for _, s := range w.path {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.name)
		switch {
		case s.isKey:
			b.WriteByte('[')
			b.WriteString(s.key)
			b.WriteByte(']')
		case s.index >= 0:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
		}
	}
	return b.String()
}

func (w *walker) push(s pathSeg) { w.path = append(w.path, s) }
func (w *walker) pop()           { w.path = w.path[:len(w.path)-1] }

// message visits m and every message below it that the plan says may hold
// something to check, unpacking every Any it meets.
func (w *walker) message(m protoreflect.Message) {
	w.planned(m, planFor(m.Descriptor()))
}

// planned walks m (of the type p was made for; p is nil for an Any).
func (w *walker) planned(m protoreflect.Message, p *walkPlan) {
	if p == nil {
		w.any(m.Interface().(*anypb.Any))
		return
	}
	if p.checked {
		w.c.visit(w.kind, w.name, w.pathString(), m)
	}
	var sv reflect.Value
	for _, f := range p.fields {
		if f.goIndex < 0 {
			if m.Has(f.fd) {
				w.value(f, m.Get(f.fd))
			}
			continue
		}
		if !sv.IsValid() {
			sv = reflect.ValueOf(m.Interface()).Elem()
		}
		w.goValue(f, sv.Field(f.goIndex))
	}
	for _, o := range p.oneofs {
		if o.goIndex >= 0 && len(o.wrappers) == len(o.members) {
			if !sv.IsValid() {
				sv = reflect.ValueOf(m.Interface()).Elem()
			}
			if iv := sv.Field(o.goIndex); !iv.IsNil() {
				if f, ok := o.wrappers[iv.Elem().Type()]; ok {
					w.goValue(f, iv.Elem().Elem().Field(0))
				}
			}
			continue
		}
		if fd := m.WhichOneof(o.od); fd != nil {
			if f, ok := o.members[fd.Number()]; ok {
				w.value(f, m.Get(fd))
			}
		}
	}
}

// goValue walks the field f held in the Go value v: a message pointer, a
// list of them or a map to them. Nil messages hold nothing to check.
func (w *walker) goValue(f planField, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			w.push(pathSeg{name: f.name, index: -1})
			w.planned(v.Interface().(proto.Message).ProtoReflect(), f.plan)
			w.pop()
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if el := v.Index(i); !el.IsNil() {
				w.push(pathSeg{name: f.name, index: i})
				w.planned(el.Interface().(proto.Message).ProtoReflect(), f.plan)
				w.pop()
			}
		}
	case reflect.Map:
		type entry struct {
			key string
			val reflect.Value
		}
		entries := make([]entry, 0, v.Len())
		for it := v.MapRange(); it.Next(); {
			entries = append(entries, entry{fmt.Sprint(it.Key().Interface()), it.Value()})
		}
		slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.key, b.key) })
		for _, e := range entries {
			if !e.val.IsNil() {
				w.push(pathSeg{name: f.name, index: -1, key: e.key, isKey: true})
				w.planned(e.val.Interface().(proto.Message).ProtoReflect(), f.plan)
				w.pop()
			}
		}
	}
}

// value walks the field f held in the protoreflect value v.
func (w *walker) value(f planField, v protoreflect.Value) {
	switch {
	case f.fd.IsList():
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			w.push(pathSeg{name: f.name, index: i})
			w.planned(l.Get(i).Message(), f.plan)
			w.pop()
		}
	case f.fd.IsMap():
		mp := v.Map()
		keys := make([]protoreflect.MapKey, 0, mp.Len())
		mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool { keys = append(keys, k); return true })
		sortMapKeys(keys)
		for _, k := range keys {
			w.push(pathSeg{name: f.name, index: -1, key: k.String(), isKey: true})
			w.planned(mp.Get(k).Message(), f.plan)
			w.pop()
		}
	default:
		w.push(pathSeg{name: f.name, index: -1})
		w.planned(v.Message(), f.plan)
		w.pop()
	}
}

// any unpacks a (once per checker), validates its content and walks it.
func (w *walker) any(a *anypb.Any) {
	inner, err := w.c.unpack(a)
	if err != nil {
		w.c.fail(w.kind, w.name, w.pathString(), "cannot unpack %s: %v", a.GetTypeUrl(), err)
		return
	}
	w.c.validateAll(w.kind, w.name, w.pathString(), inner)
	w.message(inner.ProtoReflect())
}

// unpack returns the message in a, unpacked once per checker: the
// cross-reference checks (refs.go) read the same Any again.
func (c *checker) unpack(a *anypb.Any) (proto.Message, error) {
	if m, ok := c.unpacked[a]; ok {
		return m, nil
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, err
	}
	if c.unpacked == nil {
		c.unpacked = map[*anypb.Any]proto.Message{}
	}
	c.unpacked[a] = m
	return m, nil
}

// regexError is checkRegex, memoised per checker: route configurations
// repeat the same patterns across services.
func (c *checker) regexError(re string) error {
	if err, ok := c.regexes[re]; ok {
		return err
	}
	err := checkRegex(re)
	if c.regexes == nil {
		c.regexes = map[string]error{}
	}
	c.regexes[re] = err
	return err
}
