package validate

import (
	"strconv"
	"strings"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// The deep walk is directed by the message types: for each type it visits
// only the fields through which a checked message (or an Any, whose content
// must be unpacked and validated) can be reached, and it builds a field
// path string only when a check needs one. A RouteConfiguration's
// durations, wrappers, header values and the like are never entered.

// checkedTypes are the messages visit() checks. A check of a new message
// type must add it here, or the walk will not reach it.
var checkedTypes = map[protoreflect.FullName]bool{
	fullName(&matcherv3.RegexMatcher{}):       true, // regex compiles, program size
	fullName(&corev3.HttpUri{}):               true, // cluster exists (filterrefs.go)
	fullName(&corev3.GrpcService_EnvoyGrpc{}): true, // cluster exists (filterrefs.go)
}

var anyName = fullName(&anypb.Any{})

func fullName(m proto.Message) protoreflect.FullName { return m.ProtoReflect().Descriptor().FullName() }

// walkPlan is what the walk does with one message type.
type walkPlan struct {
	checked bool                           // visit() applies to this type
	fields  []protoreflect.FieldDescriptor // fields that lead to a checked type or an Any, by number
}

// plans memoises walkPlan per message type. Descriptors are immutable, so
// the memo is a pure cache: it changes what is computed, never the result.
var plans sync.Map // protoreflect.FullName → *walkPlan

func planFor(d protoreflect.MessageDescriptor) *walkPlan {
	if p, ok := plans.Load(d.FullName()); ok {
		return p.(*walkPlan)
	}
	p := &walkPlan{checked: checkedTypes[d.FullName()]}
	fields := d.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if target := fieldMessage(fd); target != nil && reachesChecked(target) {
			p.fields = append(p.fields, fd)
		}
	}
	sortFields(p.fields)
	plans.Store(d.FullName(), p)
	return p
}

// fieldMessage is the message type a field holds (a map's value type), or nil.
func fieldMessage(fd protoreflect.FieldDescriptor) protoreflect.MessageDescriptor {
	if fd.IsMap() {
		return fd.MapValue().Message()
	}
	return fd.Message()
}

// reachesChecked reports whether a message of type d can contain, at any
// depth, a checked message or an Any.
func reachesChecked(d protoreflect.MessageDescriptor) bool {
	seen := map[protoreflect.FullName]bool{}
	queue := []protoreflect.MessageDescriptor{d}
	for len(queue) > 0 {
		md := queue[0]
		queue = queue[1:]
		if seen[md.FullName()] {
			continue
		}
		seen[md.FullName()] = true
		if md.FullName() == anyName || checkedTypes[md.FullName()] {
			return true
		}
		fields := md.Fields()
		for i := 0; i < fields.Len(); i++ {
			if t := fieldMessage(fields.Get(i)); t != nil {
				queue = append(queue, t)
			}
		}
	}
	return false
}

func sortFields(fs []protoreflect.FieldDescriptor) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].Number() < fs[j-1].Number(); j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

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
	d := m.Descriptor()
	if d.FullName() == anyName {
		w.any(m.Interface().(*anypb.Any))
		return
	}
	p := planFor(d)
	if p.checked {
		w.c.visit(w.kind, w.name, w.pathString(), m)
	}
	for _, fd := range p.fields {
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		name := string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				w.push(pathSeg{name: name, index: i})
				w.message(l.Get(i).Message())
				w.pop()
			}
		case fd.IsMap():
			mp := v.Map()
			keys := make([]protoreflect.MapKey, 0, mp.Len())
			mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool { keys = append(keys, k); return true })
			sortMapKeys(keys)
			for _, k := range keys {
				w.push(pathSeg{name: name, index: -1, key: k.String(), isKey: true})
				w.message(mp.Get(k).Message())
				w.pop()
			}
		default:
			w.push(pathSeg{name: name, index: -1})
			w.message(v.Message())
			w.pop()
		}
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
