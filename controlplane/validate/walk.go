package validate

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
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
	checked bool        // visit() applies to this type
	fields  []planField // fields outside oneofs that lead to a checked type or an Any, by number
	oneofs  []planOneof // oneofs with such members
}

// planField is one field to enter, with the plan of the type it holds.
type planField struct {
	fd   protoreflect.FieldDescriptor
	name string
	plan *walkPlan // nil for an Any
	// goIndex is the generated struct's field holding it, read with Go
	// reflection (much cheaper than protoreflect's Has and Get); -1 when
	// the struct has no such field (then protoreflect is used).
	goIndex int
}

// planOneof is a oneof whose planned members are looked up by number, or
// by the Go type of the wrapper the generated struct holds.
type planOneof struct {
	od       protoreflect.OneofDescriptor
	members  map[protoreflect.FieldNumber]planField
	goIndex  int                        // the struct's interface field; -1 when unknown
	wrappers map[reflect.Type]planField // wrapper struct type → member
}

// plans memoises walkPlan per message type. Descriptors are immutable, so
// the memo is a pure cache: it changes what is computed, never the result.
// Plans link to their fields' plans, so a walk looks up only its root's.
var (
	plansMu sync.Mutex
	plans   = map[protoreflect.FullName]*walkPlan{}
)

func planFor(d protoreflect.MessageDescriptor) *walkPlan {
	plansMu.Lock()
	defer plansMu.Unlock()
	return planLocked(d)
}

func planLocked(d protoreflect.MessageDescriptor) *walkPlan {
	if p, ok := plans[d.FullName()]; ok {
		return p
	}
	p := &walkPlan{checked: checkedTypes[d.FullName()]}
	plans[d.FullName()] = p // before the fields: types may be recursive
	layout := goLayoutOf(d)
	fields := d.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		target := fieldMessage(fd)
		if target == nil || !reachesChecked(target) {
			continue
		}
		pf := planField{fd: fd, name: string(fd.Name()), goIndex: -1}
		if target.FullName() != anyName {
			pf.plan = planLocked(target)
		}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			k := slices.IndexFunc(p.oneofs, func(o planOneof) bool { return o.od == od })
			if k < 0 {
				p.oneofs = append(p.oneofs, layout.oneof(od))
				k = len(p.oneofs) - 1
			}
			p.oneofs[k].members[fd.Number()] = pf
			if wt := layout.wrapperOf(fd); wt != nil {
				p.oneofs[k].wrappers[wt] = pf
			}
			continue
		}
		if idx, ok := layout.fields[fd.Number()]; ok {
			pf.goIndex = idx
		}
		p.fields = append(p.fields, pf)
	}
	slices.SortFunc(p.fields, func(a, b planField) int { return cmp.Compare(a.fd.Number(), b.fd.Number()) })
	return p
}

// goLayout is where a generated message keeps its fields in its Go struct.
type goLayout struct {
	mt     protoreflect.MessageType // nil when the type is not registered
	fields map[protoreflect.FieldNumber]int
	oneofs map[protoreflect.Name]int // oneof name → its interface field
}

// goLayoutOf reads the generated struct's protobuf struct tags.
func goLayoutOf(d protoreflect.MessageDescriptor) goLayout {
	l := goLayout{fields: map[protoreflect.FieldNumber]int{}, oneofs: map[protoreflect.Name]int{}}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(d.FullName())
	if err != nil {
		return l
	}
	t := reflect.TypeOf(mt.Zero().Interface())
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return l
	}
	l.mt = mt
	t = t.Elem()
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag
		if name := tag.Get("protobuf_oneof"); name != "" {
			l.oneofs[protoreflect.Name(name)] = i
			continue
		}
		parts := strings.Split(tag.Get("protobuf"), ",")
		if len(parts) < 2 {
			continue
		}
		if n, err := strconv.Atoi(parts[1]); err == nil {
			l.fields[protoreflect.FieldNumber(n)] = i
		}
	}
	return l
}

func (l goLayout) oneof(od protoreflect.OneofDescriptor) planOneof {
	o := planOneof{od: od, members: map[protoreflect.FieldNumber]planField{}, goIndex: -1, wrappers: map[reflect.Type]planField{}}
	if idx, ok := l.oneofs[od.Name()]; ok {
		o.goIndex = idx
	}
	return o
}

// wrapperOf is the Go type of the oneof wrapper that holds field fd: found
// by setting fd on a new message and looking at what the struct holds.
func (l goLayout) wrapperOf(fd protoreflect.FieldDescriptor) reflect.Type {
	idx, ok := l.oneofs[fd.ContainingOneof().Name()]
	if l.mt == nil || !ok {
		return nil
	}
	m := l.mt.New()
	m.Set(fd, m.NewField(fd))
	w := reflect.ValueOf(m.Interface()).Elem().Field(idx)
	if w.IsNil() || w.Elem().Kind() != reflect.Pointer || w.Elem().Elem().NumField() != 1 {
		return nil
	}
	return w.Elem().Type()
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
