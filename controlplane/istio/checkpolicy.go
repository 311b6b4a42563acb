package istio

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/rosenmesh/rosen/controlplane/config"
)

// checkDuration applies Istio's ValidateDuration: at least 1ms, in whole
// milliseconds. A nil duration is fine (unset).
func (b *builder) checkDuration(o *config.Object, field string, d *durationpb.Duration) {
	if d == nil {
		return
	}
	if err := d.CheckValid(); err != nil {
		b.errorf(o, field, "invalid duration: %v", err)
		return
	}
	v := d.AsDuration()
	switch {
	case v < time.Millisecond:
		b.errorf(o, field, "duration %s must be at least 1ms", v)
	case v%time.Millisecond != 0:
		b.errorf(o, field, "duration %s: only millisecond precision is supported", v)
	}
}

// checkPercent checks a 0-100 percentage.
func (b *builder) checkPercent(o *config.Object, field string, p float64) {
	if p < 0 || p > 100 || p != p {
		b.errorf(o, field, "percentage %v must be between 0 and 100", p)
	}
}

// checkTrafficPolicy reports DestinationRule policy values Istio rejects and
// that Envoy would refuse.
func (b *builder) checkTrafficPolicy(o *config.Object, field string, tp *networking.TrafficPolicy) {
	if tp == nil {
		return
	}
	if lb := tp.GetLoadBalancer(); lb != nil {
		if ch := lb.GetConsistentHash(); ch != nil {
			if ch.GetHashKey() == nil {
				b.errorf(o, field+".loadBalancer.consistentHash", "a hash key (httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName) is required")
			}
			if c := ch.GetHttpCookie(); c != nil {
				if c.GetName() == "" {
					b.errorf(o, field+".loadBalancer.consistentHash.httpCookie.name", "required")
				}
				if c.GetTtl() != nil && c.GetTtl().AsDuration() < 0 {
					b.errorf(o, field+".loadBalancer.consistentHash.httpCookie.ttl", "must not be negative")
				}
			}
		}
	}
	if cp := tp.GetConnectionPool(); cp != nil {
		b.checkDuration(o, field+".connectionPool.tcp.connectTimeout", cp.GetTcp().GetConnectTimeout())
		b.checkDuration(o, field+".connectionPool.http.idleTimeout", cp.GetHttp().GetIdleTimeout())
		b.checkDuration(o, field+".connectionPool.tcp.maxConnectionDuration", cp.GetTcp().GetMaxConnectionDuration())
		if cp.GetTcp().GetMaxConnections() < 0 {
			b.errorf(o, field+".connectionPool.tcp.maxConnections", "must not be negative")
		}
		h := cp.GetHttp()
		for _, f := range []struct {
			name string
			v    int32
		}{
			{"http1MaxPendingRequests", h.GetHttp1MaxPendingRequests()}, {"http2MaxRequests", h.GetHttp2MaxRequests()},
			{"maxRequestsPerConnection", h.GetMaxRequestsPerConnection()}, {"maxRetries", h.GetMaxRetries()},
			{"maxConcurrentStreams", h.GetMaxConcurrentStreams()},
		} {
			if f.v < 0 {
				b.errorf(o, field+".connectionPool.http."+f.name, "must not be negative")
			}
		}
	}
	if od := tp.GetOutlierDetection(); od != nil {
		b.checkDuration(o, field+".outlierDetection.interval", od.GetInterval())
		b.checkDuration(o, field+".outlierDetection.baseEjectionTime", od.GetBaseEjectionTime())
		if p := od.GetMaxEjectionPercent(); p < 0 || p > 100 {
			b.errorf(o, field+".outlierDetection.maxEjectionPercent", "percentage %d must be between 0 and 100", p)
		}
		if p := od.GetMinHealthPercent(); p < 0 || p > 100 {
			b.errorf(o, field+".outlierDetection.minHealthPercent", "percentage %d must be between 0 and 100", p)
		}
		if od.GetConsecutive_5XxErrors().GetValue() > 0 && od.GetConsecutiveErrors() > 0 {
			b.errorf(o, field+".outlierDetection", "only one of consecutiveErrors and consecutive5xxErrors can be set")
		}
	}
	for i, pl := range tp.GetPortLevelSettings() {
		f := fmt.Sprintf("%s.portLevelSettings[%d]", field, i)
		if n := pl.GetPort().GetNumber(); n < 1 || n > 65535 {
			b.errorf(o, f+".port.number", "port %d out of range 1-65535", n)
		}
		b.checkTrafficPolicy(o, f, &networking.TrafficPolicy{
			LoadBalancer: pl.GetLoadBalancer(), ConnectionPool: pl.GetConnectionPool(),
			OutlierDetection: pl.GetOutlierDetection(),
		})
	}
}
