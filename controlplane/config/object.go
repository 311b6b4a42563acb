// Package config parses the user's configuration files (multi-document YAML in
// Istio's and Kubernetes' shapes) into typed objects, strictly: an unknown
// kind or field is an error naming the file, document and field.
package config

import (
	"fmt"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// Object is one parsed YAML document, or one item of a `kind: List` document.
type Object struct {
	APIVersion string
	Kind       string // Gateway, VirtualService, DestinationRule, ServiceEntry, WorkloadEntry, Service, EndpointSlice, Secret
	Name       string
	Namespace  string // defaulted to "default"
	Labels     map[string]string
	// File and Line locate the document (Line is the 1-based line where the
	// document starts; for a List item, where the item starts).
	File string
	Line int
	// Spec is the typed body: *networking.Gateway, *networking.VirtualService,
	// *networking.DestinationRule, *networking.ServiceEntry,
	// *networking.WorkloadEntry (istio.io/api/networking/v1alpha3), or the whole
	// *corev1.Service, *discoveryv1.EndpointSlice, *corev1.Secret.
	Spec any
	// Skipped is set for well-known Kubernetes kinds that carry nothing for
	// the mesh (Deployment, ServiceAccount, …); Spec is nil and NewSet moves
	// them to Set.Skipped.
	Skipped bool

	// text and firstLine are the document's YAML, kept to point errors at
	// the line of the field they are about (for a List item, the whole List
	// document's).
	text      []byte
	firstLine int
	// item is the item's path in its List document ("items[3]"), "" for a
	// document of its own.
	item string
	// partial marks the items of a List document in which another item
	// failed: never reused by ParseYAMLReusing, so that the document is
	// parsed, and its errors reported, again.
	partial bool
}

// Source returns the provenance used in error messages. Its File is
// "file:line" when the document's line is known, so that a message reads
// "bookinfo.yaml:12: VirtualService default/reviews: spec.http[0]: ...".
func (o *Object) Source() model.Source {
	file := o.File
	if o.Line > 0 {
		file = fmt.Sprintf("%s:%d", o.File, o.Line)
	}
	return model.Source{File: file, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}
}

// Set is every object of one configuration, in a deterministic order
// (by kind, namespace, name).
type Set struct {
	Objects []*Object
	// Skipped lists documents of well-known kinds that Rosen does not read.
	Skipped []*Object
}
