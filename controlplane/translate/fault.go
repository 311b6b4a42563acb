package translate

import (
	"strconv"
	"strings"

	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
	networking "istio.io/api/networking/v1alpha3"
)

// FaultFilterName is the fault filter's name in HCM chains and in
// typed_per_filter_config.
const FaultFilterName = "envoy.filters.http.fault"

// Fault converts an Istio fault injection to the per-route HTTPFault config,
// nil when it injects nothing. Percentages use MILLION as Istio does; an
// unset percentage means 100%.
func Fault(in *networking.HTTPFaultInjection) *faultv3.HTTPFault {
	if in == nil || (in.GetDelay() == nil && in.GetAbort() == nil) {
		return nil
	}
	out := &faultv3.HTTPFault{}
	if d := in.GetDelay(); d != nil {
		delay := &faultcommonv3.FaultDelay{Percentage: percent(d.GetPercentage(), d.GetPercent())}
		switch t := d.GetHttpDelayType().(type) {
		case *networking.HTTPFaultInjection_Delay_FixedDelay:
			delay.FaultDelaySecifier = &faultcommonv3.FaultDelay_FixedDelay{FixedDelay: t.FixedDelay}
		}
		// exponentialDelay is not supported by Envoy; Istio ignores it too.
		if delay.FaultDelaySecifier != nil {
			out.Delay = delay
		}
	}
	if a := in.GetAbort(); a != nil {
		abort := &faultv3.FaultAbort{Percentage: percent(a.GetPercentage(), 0)}
		switch t := a.GetErrorType().(type) {
		case *networking.HTTPFaultInjection_Abort_HttpStatus:
			abort.ErrorType = &faultv3.FaultAbort_HttpStatus{HttpStatus: uint32(t.HttpStatus)}
		case *networking.HTTPFaultInjection_Abort_GrpcStatus:
			abort.ErrorType = &faultv3.FaultAbort_GrpcStatus{GrpcStatus: grpcCode(t.GrpcStatus)}
		}
		if abort.ErrorType != nil {
			out.Abort = abort
		}
	}
	if out.Delay == nil && out.Abort == nil {
		return nil
	}
	return out
}

// grpcCode accepts a code name ("UNAVAILABLE") or number ("14"), as Istio.
func grpcCode(s string) uint32 {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(n)
	}
	var c codes.Code
	if err := c.UnmarshalJSON([]byte(strconv.Quote(strings.ToUpper(s)))); err == nil {
		return uint32(c)
	}
	return uint32(codes.Unknown)
}

// percent converts Istio's Percent (or the deprecated integer percent) to a
// FractionalPercent per million; unset means 100%.
func percent(p *networking.Percent, legacy int32) *typev3.FractionalPercent {
	switch {
	case p != nil:
		return &typev3.FractionalPercent{Numerator: uint32(p.GetValue()*10000 + 0.5), Denominator: typev3.FractionalPercent_MILLION}
	case legacy > 0:
		return &typev3.FractionalPercent{Numerator: uint32(legacy), Denominator: typev3.FractionalPercent_HUNDRED}
	}
	return &typev3.FractionalPercent{Numerator: 1000000, Denominator: typev3.FractionalPercent_MILLION}
}
