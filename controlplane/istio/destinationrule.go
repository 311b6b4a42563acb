package istio

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// applyDestinationRules attaches each DestinationRule to the services of its
// host: the exact host first; a wildcard rule applies to the services that no
// exact rule names, the longest wildcard winning.
func (b *builder) applyDestinationRules() {
	byHost := map[string]typed[*networking.DestinationRule]{}
	for _, dr := range b.destinationRules {
		host := ResolveHost(dr.spec.GetHost(), dr.obj.Namespace)
		if host == "" {
			b.errorf(dr.obj, "spec.host", "required")
			continue
		}
		if prev, ok := byHost[host]; ok {
			b.errorf(dr.obj, "spec.host", "host %s already has DestinationRule %s/%s (%s); merge them into one",
				host, prev.obj.Namespace, prev.obj.Name, prev.obj.Source().File)
			continue
		}
		if !b.checkDestinationRule(dr) {
			continue
		}
		byHost[host] = dr
	}
	var wildcards []string
	for h := range byHost {
		if strings.Contains(h, "*") {
			wildcards = append(wildcards, h)
		}
	}
	// Longest (most specific) first; ties broken by name for determinism.
	sort.Slice(wildcards, func(i, j int) bool {
		if len(wildcards[i]) != len(wildcards[j]) {
			return len(wildcards[i]) > len(wildcards[j])
		}
		return wildcards[i] < wildcards[j]
	})
	for _, host := range sortedKeys(b.services) {
		s := b.services[host]
		dr, ok := byHost[host]
		if !ok {
			for _, w := range wildcards {
				if hostMatches(w, host) {
					dr, ok = byHost[w], true
					break
				}
			}
		}
		if ok {
			applyRule(s, dr)
		}
	}
}

// checkDestinationRule reports what Istio's validation rejects.
func (b *builder) checkDestinationRule(dr typed[*networking.DestinationRule]) bool {
	n := len(b.errs)
	seen := map[string]bool{}
	for i, ss := range dr.spec.GetSubsets() {
		field := fmt.Sprintf("spec.subsets[%d]", i)
		switch {
		case ss.GetName() == "":
			b.errorf(dr.obj, field+".name", "required")
		case seen[ss.GetName()]:
			b.errorf(dr.obj, field+".name", "duplicate subset %q", ss.GetName())
		case strings.ContainsAny(ss.GetName(), "|"):
			b.errorf(dr.obj, field+".name", "subset name %q must not contain '|'", ss.GetName())
		}
		seen[ss.GetName()] = true
		b.checkTrafficPolicy(dr.obj, field+".trafficPolicy", ss.GetTrafficPolicy())
	}
	b.checkTrafficPolicy(dr.obj, "spec.trafficPolicy", dr.spec.GetTrafficPolicy())
	return len(b.errs) == n
}

func applyRule(s *model.Service, dr typed[*networking.DestinationRule]) {
	src := dr.obj.Source()
	s.RuleSource = &src
	if tp := dr.spec.GetTrafficPolicy(); tp != nil {
		s.Policy = proto.Clone(tp).(*networking.TrafficPolicy)
	}
	for _, ss := range dr.spec.GetSubsets() {
		s.Subsets = append(s.Subsets, model.Subset{
			Name:   ss.GetName(),
			Labels: copyLabels(ss.GetLabels()),
			Policy: MergeTrafficPolicy(dr.spec.GetTrafficPolicy(), ss.GetTrafficPolicy()),
		})
	}
	sort.Slice(s.Subsets, func(i, j int) bool { return s.Subsets[i].Name < s.Subsets[j].Name })
}

// MergeTrafficPolicy merges a subset's policy over the rule's top-level
// policy, as Istio does: each top-level field the subset sets (loadBalancer,
// connectionPool, outlierDetection, tls, portLevelSettings, ...) replaces the
// rule's field whole. Neither input is modified; nil when both are nil.
func MergeTrafficPolicy(top, subset *networking.TrafficPolicy) *networking.TrafficPolicy {
	if top == nil && subset == nil {
		return nil
	}
	if top == nil {
		return proto.Clone(subset).(*networking.TrafficPolicy)
	}
	out := proto.Clone(top).(*networking.TrafficPolicy)
	if subset == nil {
		return out
	}
	dst := out.ProtoReflect()
	subset.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, cloneValue(fd, v))
		return true
	})
	return out
}

func cloneValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) protoreflect.Value {
	switch {
	case fd.IsList():
		src := v.List()
		l := (&networking.TrafficPolicy{}).ProtoReflect().NewField(fd).List()
		for i := 0; i < src.Len(); i++ {
			e := src.Get(i)
			if fd.Kind() == protoreflect.MessageKind {
				e = protoreflect.ValueOfMessage(proto.Clone(e.Message().Interface()).ProtoReflect())
			}
			l.Append(e)
		}
		return protoreflect.ValueOfList(l)
	case fd.Kind() == protoreflect.MessageKind && !fd.IsMap():
		return protoreflect.ValueOfMessage(proto.Clone(v.Message().Interface()).ProtoReflect())
	}
	return v
}
