package authz

import (
	"encoding/json"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Response turns a decision into the CheckResponse Envoy expects: OK with
// header and query mutations, or PERMISSION_DENIED with the HTTP status,
// headers and body of the deny.
func Response(d Decision) *authv3.CheckResponse {
	resp := &authv3.CheckResponse{}
	if md := metadataStruct(d.DynamicMetadata); md != nil {
		resp.DynamicMetadata = md
	}
	if d.Allowed {
		resp.Status = &rpcstatus.Status{Code: int32(code.Code_OK)}
		ok := &authv3.OkHttpResponse{
			Headers:                 headerOptions(d.Headers, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			ResponseHeadersToAdd:    headerOptions(d.ResponseHeadersToAdd, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
			HeadersToRemove:         d.RequestHeadersToRemove,
			QueryParametersToRemove: d.QueryParametersToRemove,
		}
		for _, q := range d.QueryParametersToSet {
			ok.QueryParametersToSet = append(ok.QueryParametersToSet, &corev3.QueryParameter{Key: q.Key, Value: q.Value})
		}
		resp.HttpResponse = &authv3.CheckResponse_OkResponse{OkResponse: ok}
		return resp
	}
	status := d.Status
	if status == 0 || status == http.StatusOK {
		status = http.StatusForbidden
	}
	// The reason may quote the request (Rosen's own errors, a token's
	// verification error): a string that is not UTF-8 would fail the
	// response's marshalling, a gRPC error instead of the deny.
	resp.Status = &rpcstatus.Status{Code: int32(code.Code_PERMISSION_DENIED), Message: strings.ToValidUTF8(d.Reason, "\uFFFD")}
	resp.HttpResponse = &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode(status)},
		Headers: headerOptions(d.Headers, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
		Body:    d.Body,
	}}
	return resp
}

func headerOptions(hs []Header, action corev3.HeaderValueOption_HeaderAppendAction) []*corev3.HeaderValueOption {
	if len(hs) == 0 {
		return nil
	}
	out := make([]*corev3.HeaderValueOption, 0, len(hs))
	for _, h := range hs {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: h.Key, Value: h.Value},
			AppendAction: action,
		})
	}
	return out
}

// metadataStruct converts dynamic metadata (JSON numbers included) into a
// Struct; values that do not convert are dropped rather than failing the
// decision.
func metadataStruct(md map[string]any) *structpb.Struct {
	if len(md) == 0 {
		return nil
	}
	s, err := structpb.NewStruct(plainJSON(md).(map[string]any))
	if err != nil {
		return nil
	}
	return s
}

// plainJSON replaces json.Number with float64, recursively.
func plainJSON(v any) any {
	switch t := v.(type) {
	case json.Number:
		f, _ := t.Float64()
		return f
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = plainJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = plainJSON(e)
		}
		return out
	}
	return v
}
