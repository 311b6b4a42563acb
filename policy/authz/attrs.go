package authz

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// attributesValue is input.attributes as OPA-Envoy builds it (the
// AttributeContext as protobuf JSON, decoded with numbers kept as written),
// built straight from the proto getters instead of marshalling to JSON and
// parsing it back: the messages Envoy sends on every request (peers with
// socket addresses, the HTTP request, jwt_authn's metadata) are converted
// here; anything rarer (TLS session, typed metadata, other address kinds,
// header_map) goes through protojson, so the result is the same document
// either way (TestAttributesMatchProtoJSON). Headers are the folded ones.
func attributesValue(a *authv3.AttributeContext, headers map[string]string) (map[string]any, error) {
	out := make(map[string]any, 4)
	if p := a.GetSource(); p != nil {
		v, err := peerValue(p)
		if err != nil {
			return nil, err
		}
		out["source"] = v
	}
	if p := a.GetDestination(); p != nil {
		v, err := peerValue(p)
		if err != nil {
			return nil, err
		}
		out["destination"] = v
	}
	if r := a.GetRequest(); r != nil {
		out["request"] = requestValue(r, headers)
	}
	if len(a.GetContextExtensions()) > 0 {
		out["contextExtensions"] = stringMap(a.GetContextExtensions())
	}
	if err := setMetadata(out, "metadataContext", a.GetMetadataContext()); err != nil {
		return nil, err
	}
	if err := setMetadata(out, "routeMetadataContext", a.GetRouteMetadataContext()); err != nil {
		return nil, err
	}
	if t := a.GetTlsSession(); t != nil {
		v, err := protoJSONValue(t)
		if err != nil {
			return nil, err
		}
		out["tlsSession"] = v
	}
	return out, nil
}

func peerValue(p *authv3.AttributeContext_Peer) (map[string]any, error) {
	out := make(map[string]any, 5)
	if ad := p.GetAddress(); ad != nil {
		v, err := addressValue(ad)
		if err != nil {
			return nil, err
		}
		out["address"] = v
	}
	setString(out, "service", p.GetService())
	if len(p.GetLabels()) > 0 {
		out["labels"] = stringMap(p.GetLabels())
	}
	setString(out, "principal", p.GetPrincipal())
	setString(out, "certificate", p.GetCertificate())
	return out, nil
}

// addressValue converts a plain socket address (address, port, protocol);
// any other shape is left to protojson.
func addressValue(ad *corev3.Address) (any, error) {
	sa := ad.GetSocketAddress()
	if sa == nil || sa.GetResolverName() != "" || sa.GetIpv4Compat() || sa.GetNetworkNamespaceFilepath() != "" || sa.GetNamedPort() != "" {
		return protoJSONValue(ad)
	}
	s := make(map[string]any, 3)
	if sa.GetProtocol() != corev3.SocketAddress_TCP {
		s["protocol"] = sa.GetProtocol().String()
	}
	setString(s, "address", sa.GetAddress())
	if p := sa.GetPortValue(); p != 0 {
		s["portValue"] = json.Number(strconv.FormatUint(uint64(p), 10))
	}
	return map[string]any{"socketAddress": s}, nil
}

func requestValue(r *authv3.AttributeContext_Request, headers map[string]string) map[string]any {
	out := make(map[string]any, 2)
	if t := r.GetTime(); t != nil {
		out["time"] = timestampValue(t)
	}
	h := r.GetHttp()
	if h == nil {
		return out
	}
	hm := make(map[string]any, 14)
	setString(hm, "id", h.GetId())
	setString(hm, "method", h.GetMethod())
	hv := make(map[string]any, len(headers))
	for k, v := range headers {
		hv[k] = v
	}
	hm["headers"] = hv
	if m := h.GetHeaderMap(); m != nil {
		hm["headerMap"], _ = protoJSONValue(m) // strings and bytes only: cannot fail
	}
	setString(hm, "path", h.GetPath())
	setString(hm, "host", h.GetHost())
	setString(hm, "scheme", h.GetScheme())
	setString(hm, "query", h.GetQuery())
	setString(hm, "fragment", h.GetFragment())
	if n := h.GetSize(); n != 0 {
		hm["size"] = strconv.FormatInt(n, 10) // int64 is a JSON string in protojson
	}
	setString(hm, "protocol", h.GetProtocol())
	setString(hm, "body", h.GetBody())
	if b := h.GetRawBody(); len(b) > 0 {
		hm["rawBody"] = base64.StdEncoding.EncodeToString(b)
	}
	out["http"] = hm
	return out
}

// timestampValue is protojson's RFC 3339 form: UTC, 0, 3, 6 or 9 fractional digits.
func timestampValue(t *timestamppb.Timestamp) string {
	s := t.AsTime().UTC().Format("2006-01-02T15:04:05.000000000")
	s = strings.TrimSuffix(s, "000")
	s = strings.TrimSuffix(s, "000")
	s = strings.TrimSuffix(s, ".000")
	return s + "Z"
}

func setMetadata(out map[string]any, key string, md *corev3.Metadata) error {
	if md == nil {
		return nil
	}
	v, err := metadataValue(md)
	if err != nil {
		return err
	}
	out[key] = v
	return nil
}

// metadataValue converts filter_metadata (Structs); typed_filter_metadata
// (Any) goes through protojson.
func metadataValue(md *corev3.Metadata) (map[string]any, error) {
	out := make(map[string]any, 2)
	if fm := md.GetFilterMetadata(); len(fm) > 0 {
		m := make(map[string]any, len(fm))
		for k, s := range fm {
			v, err := structValue(s)
			if err != nil {
				return nil, fmt.Errorf("metadata %s: %w", k, err)
			}
			m[k] = v
		}
		out["filterMetadata"] = m
	}
	if len(md.GetTypedFilterMetadata()) > 0 {
		v, err := protoJSONValue(&corev3.Metadata{TypedFilterMetadata: md.GetTypedFilterMetadata()})
		if err != nil {
			return nil, err
		}
		out["typedFilterMetadata"] = v.(map[string]any)["typedFilterMetadata"]
	}
	return out, nil
}

func structValue(s *structpb.Struct) (map[string]any, error) {
	out := make(map[string]any, len(s.GetFields()))
	for k, v := range s.GetFields() {
		x, err := valueOf(v)
		if err != nil {
			return nil, err
		}
		out[k] = x
	}
	return out, nil
}

// valueOf converts a google.protobuf.Value as protojson writes it.
func valueOf(v *structpb.Value) (any, error) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NullValue:
		return nil, nil
	case *structpb.Value_NumberValue:
		return jsonNumber(k.NumberValue)
	case *structpb.Value_StringValue:
		return k.StringValue, nil
	case *structpb.Value_BoolValue:
		return k.BoolValue, nil
	case *structpb.Value_StructValue:
		return structValue(k.StructValue)
	case *structpb.Value_ListValue:
		out := make([]any, len(k.ListValue.GetValues()))
		for i, e := range k.ListValue.GetValues() {
			x, err := valueOf(e)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: google.protobuf.Value without a kind", ErrBadInput)
}

// jsonNumber formats a double as protojson (after encoding/json) does.
func jsonNumber(f float64) (json.Number, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("%w: metadata number %v is not JSON", ErrBadInput, f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	s := strconv.FormatFloat(f, format, -1, 64)
	if format == 'e' {
		if n := len(s); n >= 4 && s[n-4] == 'e' && s[n-3] == '-' && s[n-2] == '0' {
			s = s[:n-2] + s[n-1:]
		}
	}
	return json.Number(s), nil
}

// protoJSONValue is one message as protobuf JSON decoded into Go values
// (numbers as json.Number): the general path for what Envoy rarely sends.
func protoJSONValue(m proto.Message) (any, error) {
	bs, err := protojson.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(bs)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	return v, nil
}

func setString(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func stringMap(in map[string]string) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}
