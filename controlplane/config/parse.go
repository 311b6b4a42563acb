package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	"sigs.k8s.io/yaml"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// Kinds Rosen reads.
const (
	KindGateway         = "Gateway"
	KindVirtualService  = "VirtualService"
	KindDestinationRule = "DestinationRule"
	KindServiceEntry    = "ServiceEntry"
	KindWorkloadEntry   = "WorkloadEntry"
	KindService         = "Service"
	KindEndpointSlice   = "EndpointSlice"
	KindSecret          = "Secret"
)

// DefaultNamespace is the namespace of a resource whose metadata names none.
const DefaultNamespace = "default"

// istioVersions are the networking.istio.io versions accepted; all share the
// v1alpha3 message types, as in istio.io/api.
var istioVersions = map[string]bool{
	"networking.istio.io/v1":       true,
	"networking.istio.io/v1beta1":  true,
	"networking.istio.io/v1alpha3": true,
}

// istioKinds maps an Istio kind to a constructor of its spec message.
var istioKinds = map[string]func() proto.Message{
	KindGateway:         func() proto.Message { return &networking.Gateway{} },
	KindVirtualService:  func() proto.Message { return &networking.VirtualService{} },
	KindDestinationRule: func() proto.Message { return &networking.DestinationRule{} },
	KindServiceEntry:    func() proto.Message { return &networking.ServiceEntry{} },
	KindWorkloadEntry:   func() proto.Message { return &networking.WorkloadEntry{} },
}

// kubeKinds maps a Kubernetes kind to its one accepted apiVersion.
var kubeKinds = map[string]string{
	KindService:       "v1",
	KindEndpointSlice: "discovery.k8s.io/v1",
	KindSecret:        "v1",
}

// metadataFields are the metadata keys accepted: true for the ones Rosen
// reads, false for server-set ones that a `kubectl get -o yaml` dump carries
// and that are ignored.
var metadataFields = map[string]bool{
	"name": true, "namespace": true, "labels": true, "annotations": true,
	"resourceVersion": false, "uid": false, "creationTimestamp": false,
	"generation": false, "managedFields": false,
}

// metadata is the part of ObjectMeta that Rosen reads.
type metadata struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// ParseYAML parses a multi-document YAML file into objects (a `kind: List`
// document into one object per item, list.go). Every problem in
// the file is reported (as model.Errors of *model.FieldError naming the file,
// the document's line, the resource and the field), and the objects that did
// parse are returned alongside.
func ParseYAML(file string, data []byte) ([]*Object, error) {
	return ParseYAMLReusing(file, data, nil)
}

// ParseYAMLReusing is ParseYAML for a new version of a file that was parsed
// before into prev: a document whose text and position are unchanged is not
// parsed again, its object from prev is returned as it was (the same
// pointer). An edit of one document in a file of hundreds re-parses one
// document, and consumers can tell unchanged objects by identity (the
// runner's endpoint path does). Objects are immutable once parsed, so
// sharing them is safe.
func ParseYAMLReusing(file string, data []byte, prev []*Object) ([]*Object, error) {
	type docKey struct {
		firstLine int
		text      string
	}
	if !utf8.Valid(data) {
		return nil, model.Errors{notText(file, data)}.Err()
	}
	// A document gives one object, or one per item of a List (all sharing
	// the document's text): reused all together, in order.
	old := make(map[docKey][]*Object, len(prev))
	for _, o := range prev {
		if o.File == file && o.text != nil && !o.partial {
			k := docKey{o.firstLine, string(o.text)}
			old[k] = append(old[k], o)
		}
	}
	var objs []*Object
	var errs model.Errors
	for _, d := range splitDocuments(data) {
		if kept, ok := old[docKey{d.firstLine, string(d.text)}]; ok {
			objs = append(objs, kept...)
			continue
		}
		dobjs, derrs := parseDocument(file, d)
		objs = append(objs, dobjs...)
		errs = append(errs, derrs...)
	}
	return objs, errs.Err()
}

// notText reports a file that is not UTF-8 (YAML must be: an image, an
// archive or a file in another encoding lands here) at the line of its first
// invalid byte, instead of the parser's "invalid trailing UTF-8 octet".
func notText(file string, data []byte) error {
	line, i := 1, 0
	for i < len(data) {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		if r == '\n' {
			line++
		}
		i += n
	}
	return model.Errorf(model.Source{File: fmt.Sprintf("%s:%d", file, line)}, "",
		"not UTF-8 text (byte 0x%02x at offset %d; a binary file?): config files are YAML in UTF-8", data[i], i)
}

// yamlLine matches the line number in a YAML parser error.
var yamlLine = regexp.MustCompile(`line (\d+):\s*`)

// parseDocument parses one document: one object, or for a `kind: List`
// one per item (list.go). A document with errors gives no object, except
// that the items of a List that did parse are returned (marked partial).
func parseDocument(file string, d document) ([]*Object, model.Errors) {
	o := &Object{File: file, Line: d.line, text: d.text, firstLine: d.firstLine}
	js, top, errs := o.read(d)
	if len(errs) > 0 {
		return nil, errs
	}
	if isList(top) {
		return parseList(o, top)
	}
	if errs := o.decode(js, top); len(errs) > 0 {
		o.locateAll(errs)
		return nil, errs
	}
	return []*Object{o}, nil
}

// locateAll points the errors about o at their fields' lines.
func (o *Object) locateAll(errs model.Errors) {
	src := o.Source().File
	for _, e := range errs {
		var fe *model.FieldError
		if errors.As(e, &fe) && fe.Source.File == src {
			o.locate(fe)
		}
	}
}

// read converts the document to JSON and its top-level mapping.
func (o *Object) read(d document) ([]byte, map[string]json.RawMessage, model.Errors) {
	fail := func(format string, args ...any) model.Errors {
		return model.Errors{model.Errorf(o.Source(), "", format, args...)}
	}
	js, err := yaml.YAMLToJSONStrict(d.text)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
		msg = strings.TrimPrefix(msg, "yaml: ")
		msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
		msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
		// Report the parser's line within the file, not within the document.
		if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
			n, _ := strconv.Atoi(msg[m[2]:m[3]])
			o.Line = n + d.firstLine - 1
			msg = msg[:m[0]] + msg[m[1]:]
		}
		return nil, nil, fail("invalid YAML: %s", msg)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil || top == nil {
		return nil, nil, fail("invalid document: expected a mapping with apiVersion, kind and metadata")
	}
	return js, top, nil
}

// decode fills o from the document's JSON (js) and its top-level mapping.
func (o *Object) decode(js []byte, top map[string]json.RawMessage) model.Errors {
	fail := func(field, format string, args ...any) model.Errors {
		return model.Errors{model.Errorf(o.Source(), field, format, args...)}
	}
	if err := stringField(top, "apiVersion", &o.APIVersion); err != nil {
		return fail("apiVersion", "%v", err)
	}
	if err := stringField(top, "kind", &o.Kind); err != nil {
		return fail("kind", "%v", err)
	}
	var errs model.Errors
	md, merrs := parseMetadata(o, top["metadata"])
	errs = append(errs, merrs...)
	o.Name, o.Namespace, o.Labels = md.Name, md.Namespace, md.Labels
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Name == "" {
		errs = append(errs, model.Errorf(o.Source(), "metadata.name", "required"))
	}
	switch {
	case o.Kind == "":
		return append(errs, model.Errorf(o.Source(), "kind", "required"))
	case securityKinds[o.Kind] != nil:
		if !securityVersions[o.APIVersion] {
			return append(errs, model.Errorf(o.Source(), "apiVersion", "unsupported apiVersion %q for %s (want security.istio.io/v1 or v1beta1)", o.APIVersion, o.Kind))
		}
		errs = append(errs, parseIstio(o, top)...)
	case o.Kind == KindRateLimitPolicy:
		if o.APIVersion != RosenAPIVersion {
			return append(errs, model.Errorf(o.Source(), "apiVersion", "unsupported apiVersion %q for %s (want %s)", o.APIVersion, o.Kind, RosenAPIVersion))
		}
		errs = append(errs, parseRateLimitPolicy(o, js)...)
	case istioKinds[o.Kind] != nil:
		if !istioVersions[o.APIVersion] {
			return append(errs, model.Errorf(o.Source(), "apiVersion", "unsupported apiVersion %q for %s (want networking.istio.io/v1, v1beta1 or v1alpha3)", o.APIVersion, o.Kind))
		}
		errs = append(errs, parseIstio(o, top)...)
	case kubeKinds[o.Kind] != "":
		if want := kubeKinds[o.Kind]; o.APIVersion != want {
			return append(errs, model.Errorf(o.Source(), "apiVersion", "unsupported apiVersion %q for %s (want %s)", o.APIVersion, o.Kind, want))
		}
		errs = append(errs, parseKube(o, js)...)
	case skippedKinds[o.APIVersion+" "+o.Kind]:
		// A workload or RBAC object beside the mesh config (Istio's own
		// samples mix them): nothing for the mesh to read, so it is skipped,
		// and counted so the user is told.
		o.Skipped = true
	default:
		return append(errs, model.Errorf(o.Source(), "kind", "unknown kind %q (apiVersion %q); supported: %s", o.Kind, o.APIVersion, supportedKinds()))
	}
	return errs
}

func supportedKinds() string {
	var ks []string
	for k := range istioKinds {
		ks = append(ks, k)
	}
	for k := range kubeKinds {
		ks = append(ks, k)
	}
	for k := range securityKinds {
		ks = append(ks, k)
	}
	ks = append(ks, KindRateLimitPolicy)
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

func stringField(top map[string]json.RawMessage, key string, dst *string) error {
	raw, ok := top[key]
	if !ok || string(raw) == "null" {
		return fmt.Errorf("required")
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("must be a string")
	}
	return nil
}

// parseMetadata reads metadata, reporting each unknown key.
func parseMetadata(o *Object, raw json.RawMessage) (metadata, model.Errors) {
	var md metadata
	if len(raw) == 0 || string(raw) == "null" {
		return md, nil
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return md, model.Errors{model.Errorf(o.Source(), "metadata", "must be a mapping")}
	}
	// Name and namespace first, so that later errors name the resource.
	var errs model.Errors
	for _, k := range []string{"name", "namespace"} {
		if v, ok := keys[k]; ok && string(v) != "null" {
			if err := json.Unmarshal(v, map[string]*string{"name": &md.Name, "namespace": &md.Namespace}[k]); err != nil {
				errs = append(errs, model.Errorf(o.Source(), "metadata."+k, "must be a string"))
			}
		}
	}
	o.Name, o.Namespace = md.Name, md.Namespace
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	for _, k := range sortedKeys(keys) {
		read, known := metadataFields[k]
		switch {
		case !known:
			errs = append(errs, model.Errorf(o.Source(), "metadata", "unknown field %q", k))
		case read && k == "labels":
			if err := json.Unmarshal(keys[k], &md.Labels); err != nil {
				errs = append(errs, model.Errorf(o.Source(), "metadata.labels", "must be a map of strings"))
			}
		case read && k == "annotations":
			if err := json.Unmarshal(keys[k], &md.Annotations); err != nil {
				errs = append(errs, model.Errorf(o.Source(), "metadata.annotations", "must be a map of strings"))
			}
		}
	}
	return md, errs
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// istioTopLevel are the top-level keys of an Istio resource.
var istioTopLevel = map[string]bool{"apiVersion": true, "kind": true, "metadata": true, "spec": true, "status": true}

func parseIstio(o *Object, top map[string]json.RawMessage) model.Errors {
	var errs model.Errors
	for _, k := range sortedKeys(top) {
		if !istioTopLevel[k] {
			errs = append(errs, model.Errorf(o.Source(), "", "unknown field %q", k))
		}
	}
	msg := specMessage(o.Kind)
	spec, ok := top["spec"]
	if !ok || string(spec) == "null" {
		return append(errs, model.Errorf(o.Source(), "spec", "required"))
	}
	tree, _ := decodeJSON(spec) // once, for both walks below; nil when not JSON (protojson reports it)
	if ferrs := unknownProtoFields(msg.ProtoReflect().Descriptor(), tree, "spec"); len(ferrs) > 0 {
		for _, fe := range ferrs {
			errs = append(errs, model.Errorf(o.Source(), fe.field, "%s", fe.msg))
		}
		return errs
	}
	spec, durErrs := normalizeDurations(msg.ProtoReflect().Descriptor(), spec, tree, "spec")
	if len(durErrs) > 0 {
		for _, fe := range durErrs {
			errs = append(errs, model.Errorf(o.Source(), fe.field, "%s", fe.msg))
		}
		return errs
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(spec, msg); err != nil {
		// Durations are normalised in spec by now: search that form.
		if normalized, ok := decodeJSON(spec); ok {
			if at := locateProtoErrors(msg.ProtoReflect().Descriptor(), normalized, "spec"); len(at) > 0 {
				for _, fe := range at {
					errs = append(errs, model.Errorf(o.Source(), fe.field, "%s", fe.msg))
				}
				return errs
			}
		}
		return append(errs, model.Errorf(o.Source(), "spec", "%s", cleanProtoError(err)))
	}
	o.Spec = msg
	return errs
}

// protoErrPrefix matches protojson's "proto: (line 1:23): " prefix (the
// line and column are in the converted JSON, meaningless to the user).
// protojson also randomly uses U+00A0 for spaces, to discourage matching its messages.
var protoErrPrefix = regexp.MustCompile(`^proto:[\s\x{a0}]*|\(line \d+:\d+\):[\s\x{a0}]*`)

func cleanProtoError(err error) string {
	msg := protoErrPrefix.ReplaceAllString(err.Error(), "")
	return strings.ReplaceAll(msg, "\u00a0", " ")
}

// strictField extracts the path from sigs.k8s.io/json strict errors such as
// `unknown field "spec.ports[0].portz"`.
var strictField = regexp.MustCompile(`^(unknown|duplicate) field "(.*)"$`)

func parseKube(o *Object, js []byte) model.Errors {
	var v any
	switch o.Kind {
	case KindService:
		v = newService()
	case KindEndpointSlice:
		v = newEndpointSlice()
	case KindSecret:
		v = newSecret()
	}
	var errs model.Errors
	strict, err := unmarshalStrict(js, v)
	if err != nil {
		return model.Errors{model.Errorf(o.Source(), "", "%s", strings.TrimPrefix(err.Error(), "json: "))}
	}
	for _, se := range strict {
		m := strictField.FindStringSubmatch(se.Error())
		if m == nil {
			errs = append(errs, model.Errorf(o.Source(), "", "%v", se))
			continue
		}
		if m[1] == "unknown" && (m[2] == "metadata" || strings.HasPrefix(m[2], "metadata.")) {
			continue // reported by parseMetadata
		}
		parent, key := splitPath(m[2])
		errs = append(errs, model.Errorf(o.Source(), parent, "%s field %q", m[1], key))
	}
	if len(errs) == 0 {
		if err := checkKube(o, v); err != nil {
			errs = append(errs, err...)
		}
	}
	o.Spec = v
	return errs
}

// splitPath splits "spec.ports[0].portz" into "spec.ports[0]" and "portz".
func splitPath(p string) (parent, key string) {
	i := strings.LastIndex(p, ".")
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// skippedKinds are well-known Kubernetes kinds that often sit in the same files
// as mesh config (Istio's bookinfo.yaml has Deployments and ServiceAccounts)
// but carry nothing Rosen reads. Any other unknown kind is an error.
var skippedKinds = map[string]bool{
	"apps/v1 Deployment": true, "apps/v1 StatefulSet": true, "apps/v1 DaemonSet": true, "apps/v1 ReplicaSet": true,
	"v1 ServiceAccount": true, "v1 ConfigMap": true, "v1 Namespace": true, "v1 Pod": true,
	"batch/v1 Job": true, "batch/v1 CronJob": true,
	"rbac.authorization.k8s.io/v1 Role": true, "rbac.authorization.k8s.io/v1 RoleBinding": true,
	"rbac.authorization.k8s.io/v1 ClusterRole": true, "rbac.authorization.k8s.io/v1 ClusterRoleBinding": true,
	"autoscaling/v2 HorizontalPodAutoscaler": true, "policy/v1 PodDisruptionBudget": true,
}
