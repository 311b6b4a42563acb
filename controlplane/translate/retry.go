package translate

import (
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
)

// DefaultRetryOn is Istio's retry_on when a route sets no retries.
const DefaultRetryOn = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"

// DefaultRetryAttempts is Istio's number of retries when a route sets none.
const DefaultRetryAttempts = 2

// RetryPolicy converts Istio retries. Unset → Istio's default policy
// (2 attempts, DefaultRetryOn); attempts 0 → no retries (nil). Numeric
// entries of retryOn become retriable_status_codes, as Istio does.
func RetryPolicy(in *networking.HTTPRetry) *routev3.RetryPolicy {
	if in == nil {
		return &routev3.RetryPolicy{RetryOn: DefaultRetryOn, NumRetries: wrapperspb.UInt32(DefaultRetryAttempts)}
	}
	if in.GetAttempts() <= 0 {
		return nil
	}
	out := &routev3.RetryPolicy{NumRetries: wrapperspb.UInt32(uint32(in.GetAttempts())), RetryOn: DefaultRetryOn}
	if in.GetRetryOn() != "" {
		var on []string
		for _, s := range strings.Split(in.GetRetryOn(), ",") {
			s = strings.TrimSpace(s)
			if code, err := strconv.ParseUint(s, 10, 32); err == nil {
				out.RetriableStatusCodes = append(out.RetriableStatusCodes, uint32(code))
				continue
			}
			if s != "" {
				on = append(on, s)
			}
		}
		if len(out.RetriableStatusCodes) > 0 && !contains(on, "retriable-status-codes") {
			on = append(on, "retriable-status-codes")
		}
		out.RetryOn = strings.Join(on, ",")
	}
	if in.GetPerTryTimeout() != nil {
		out.PerTryTimeout = durationpb.New(in.GetPerTryTimeout().AsDuration())
	}
	if in.GetBackoff() != nil {
		out.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(in.GetBackoff().AsDuration())}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
