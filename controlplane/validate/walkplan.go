package validate

import (
	"cmp"
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

// A walk plan says, per message type, which fields the walk (walk.go) must
// enter and where the generated Go struct keeps them.

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
