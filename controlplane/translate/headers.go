package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	networking "istio.io/api/networking/v1alpha3"
)

// HeaderOps is an Istio header operation block in Envoy form.
type HeaderOps struct {
	Add    []*corev3.HeaderValueOption
	Remove []string
}

// HeaderOperations converts Istio set/add/remove: set overwrites, add appends.
// Keys are sorted for determinism; sets come before adds.
func HeaderOperations(in *networking.Headers_HeaderOperations) HeaderOps {
	var out HeaderOps
	if in == nil {
		return out
	}
	for _, k := range sortedKeys(in.GetSet()) {
		out.Add = append(out.Add, headerValue(k, in.GetSet()[k], corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD))
	}
	for _, k := range sortedKeys(in.GetAdd()) {
		out.Add = append(out.Add, headerValue(k, in.GetAdd()[k], corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD))
	}
	out.Remove = append(out.Remove, in.GetRemove()...)
	return out
}

func headerValue(k, v string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: action,
	}
}
