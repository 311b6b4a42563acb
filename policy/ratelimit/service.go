package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rosenmesh/rosen/policy/folderwatch"
)

// ErrBadRequest is a ShouldRateLimit request without a domain or descriptors.
var ErrBadRequest = errors.New("ratelimit: bad request")

// Options configure a Service.
type Options struct {
	Log      *zap.Logger
	Registry prometheus.Registerer
	Counters Counters // default: NewMemory()
	// KeyPrefix starts every counter key (default "rosen-rl|").
	KeyPrefix string
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Headers adds x-ratelimit-limit/-remaining/-reset to every answer.
	Headers bool
}

// Service answers ShouldRateLimit.
type Service struct {
	rlsv3.UnimplementedRateLimitServiceServer
	log     *zap.Logger
	opts    Options
	config  atomic.Pointer[Config]
	metrics *metrics
	// rejected is the configuration's current refusal (Rejection).
	rejected folderwatch.LastRejection
}

// New returns a Service with an empty configuration (nothing is limited).
func New(opts Options) *Service {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Counters == nil {
		opts.Counters = NewMemory()
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "rosen-rl|"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Service{log: opts.Log.Named("ratelimit"), opts: opts, metrics: newMetrics(opts.Registry)}
	empty, _ := NewConfig()
	s.config.Store(empty)
	return s
}

// Register adds the RateLimitService to a gRPC server.
func (s *Service) Register(g *grpc.Server) { rlsv3.RegisterRateLimitServiceServer(g, s) }

// SetConfig puts a configuration in force.
func (s *Service) SetConfig(c *Config) { s.config.Store(c) }

// Config returns the configuration in force.
func (s *Service) Config() *Config { return s.config.Load() }

// ShouldRateLimit decides one request. Only a malformed request or a failed
// counter store is a gRPC error.
func (s *Service) ShouldRateLimit(ctx context.Context, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	start := time.Now()
	resp, result, err := s.decide(ctx, req)
	s.metrics.decision(result).Inc()
	s.metrics.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		if errors.Is(err, ErrBadRequest) {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		s.log.Warn("rate limit counters failed", zap.Error(err))
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return resp, nil
}

func (s *Service) decide(ctx context.Context, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, string, error) {
	if req.GetDomain() == "" {
		return nil, "bad_request", fmt.Errorf("%w: domain is required", ErrBadRequest)
	}
	if len(req.GetDescriptors()) == 0 {
		return nil, "bad_request", fmt.Errorf("%w: no descriptors", ErrBadRequest)
	}
	n := 0
	for i, d := range req.GetDescriptors() {
		if len(d.GetEntries()) == 0 {
			return nil, "bad_request", fmt.Errorf("%w: descriptor %d has no entries", ErrBadRequest, i)
		}
		n += len(d.GetEntries())
	}
	// One backing array for every descriptor's entries.
	all := make([]Entry, 0, n)
	descs := make([][]Entry, len(req.GetDescriptors()))
	for i, d := range req.GetDescriptors() {
		start := len(all)
		for _, e := range d.GetEntries() {
			all = append(all, Entry{Key: e.GetKey(), Value: e.GetValue()})
		}
		descs[i] = all[start:len(all):len(all)]
	}
	now := s.opts.Now()
	limits := s.config.Load().limits(req.GetDomain(), descs)

	statuses := make([]*rlsv3.RateLimitResponse_DescriptorStatus, len(descs))
	// The statuses and their limits in two arrays instead of 2n objects.
	stArr := make([]rlsv3.RateLimitResponse_DescriptorStatus, len(descs))
	limArr := make([]rlsv3.RateLimitResponse_RateLimit, len(descs))
	hits := make([]Hit, 0, len(limits))
	var idxBuf [8]int
	hitIdx := idxBuf[:0]
	for i, l := range limits {
		st := &stArr[i]
		st.Code = rlsv3.RateLimitResponse_OK
		statuses[i] = st
		if l == nil || l.unlimited {
			continue
		}
		win := unitSeconds[l.unit]
		startSec := now.Unix() / win * win
		reset := time.Unix(startSec+win, 0).Sub(now)
		cl := &limArr[i]
		cl.Name, cl.RequestsPerUnit, cl.Unit = l.name, l.perUnit, protoUnit(l.unit)
		st.CurrentLimit = cl
		st.DurationUntilReset = durationpb.New(reset)
		addend := uint64(req.GetHitsAddend())
		if a := req.GetDescriptors()[i].GetHitsAddend(); a != nil {
			addend = a.GetValue()
		}
		if addend == 0 {
			addend = 1
		}
		// A descriptor's hits_addend is a uint64; past the request's uint32
		// it only overflows counters (Redis refuses INCRBY beyond int64, a
		// gRPC error Envoy may let through) and is over any limit anyway.
		addend = min(addend, math.MaxUint32)
		hits = append(hits, Hit{
			Key:  counterKey(s.opts.KeyPrefix, req.GetDomain(), descs[i], l.unit, startSec),
			Hits: addend, Limit: uint64(l.perUnit), Enforce: !l.shadow, TTL: reset + time.Second,
		})
		hitIdx = append(hitIdx, i)
	}
	resp := &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK, Statuses: statuses}
	if len(hits) == 0 {
		return resp, "ok", nil
	}
	counts, over, err := s.opts.Counters.Apply(ctx, now, hits)
	if err != nil {
		return nil, "error", err
	}
	result := "ok"
	var wouldBe []uint64
	if over {
		// What each count would have been: a key listed twice counts both
		// hits, so a request rejected for it is reported over its limit.
		wouldBe = cumulative(hits, counts)
	}
	for k, i := range hitIdx {
		h, st := hits[k], statuses[i]
		after := counts[k]
		if over {
			after = wouldBe[k]
		}
		if after > h.Limit {
			if h.Enforce {
				st.Code = rlsv3.RateLimitResponse_OVER_LIMIT
				resp.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT
				result = "over_limit"
			} else if result == "ok" {
				result = "shadow_over_limit"
				s.log.Debug("shadow limit exceeded", zap.String("domain", req.GetDomain()), zap.String("descriptor", limits[i].path))
			}
		}
		if counts[k] < h.Limit {
			st.LimitRemaining = uint32(h.Limit - counts[k])
		}
	}
	if s.opts.Headers {
		resp.ResponseHeadersToAdd = rateLimitHeaders(statuses)
	}
	return resp, result, nil
}

// rateLimitHeaders reports the status closest to its limit, as
// envoyproxy/ratelimit does: X-RateLimit-Limit "N, N;w=<window seconds>",
// X-RateLimit-Remaining, X-RateLimit-Reset (seconds).
func rateLimitHeaders(sts []*rlsv3.RateLimitResponse_DescriptorStatus) []*corev3.HeaderValue {
	var best *rlsv3.RateLimitResponse_DescriptorStatus
	for _, st := range sts {
		if st.GetCurrentLimit() == nil {
			continue
		}
		if best == nil || st.GetLimitRemaining() < best.GetLimitRemaining() {
			best = st
		}
	}
	if best == nil {
		return nil
	}
	n := strconv.FormatUint(uint64(best.GetCurrentLimit().GetRequestsPerUnit()), 10)
	win := unitSeconds[unitOf(best.GetCurrentLimit().GetUnit())]
	return []*corev3.HeaderValue{
		{Key: "x-ratelimit-limit", Value: n + ", " + n + ";w=" + strconv.FormatInt(win, 10)},
		{Key: "x-ratelimit-remaining", Value: strconv.FormatUint(uint64(best.GetLimitRemaining()), 10)},
		{Key: "x-ratelimit-reset", Value: strconv.FormatInt(int64((best.GetDurationUntilReset().AsDuration()+time.Second-1)/time.Second), 10)},
	}
}

var protoUnits = map[Unit]rlsv3.RateLimitResponse_RateLimit_Unit{
	"second": rlsv3.RateLimitResponse_RateLimit_SECOND, "minute": rlsv3.RateLimitResponse_RateLimit_MINUTE,
	"hour": rlsv3.RateLimitResponse_RateLimit_HOUR, "day": rlsv3.RateLimitResponse_RateLimit_DAY,
	"week": rlsv3.RateLimitResponse_RateLimit_WEEK, "month": rlsv3.RateLimitResponse_RateLimit_MONTH,
	"year": rlsv3.RateLimitResponse_RateLimit_YEAR,
}

func protoUnit(u Unit) rlsv3.RateLimitResponse_RateLimit_Unit { return protoUnits[u] }

func unitOf(p rlsv3.RateLimitResponse_RateLimit_Unit) Unit {
	for u, v := range protoUnits {
		if v == p {
			return u
		}
	}
	return "second"
}
