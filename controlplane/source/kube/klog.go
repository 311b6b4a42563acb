package kube

import (
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	"go.uber.org/zap"
	"k8s.io/klog/v2"
)

var klogOnce sync.Once

// routeKlog sends client-go's own log lines (klog) into Rosen's zap logger,
// named "client-go", so one process writes one log format. Only klog's
// level 0 is kept (its higher levels are client-go's debugging chatter);
// its errors are things client-go retries, so they are warnings here.
func routeKlog(log *zap.Logger) {
	klogOnce.Do(func() {
		klog.SetLogger(logr.New(&zapSink{log: log.Named("client-go").WithOptions(zap.AddCallerSkip(2))}))
	})
}

// zapSink is a logr.LogSink over zap.
type zapSink struct {
	log *zap.Logger
}

func (s *zapSink) Init(logr.RuntimeInfo) {}

func (s *zapSink) Enabled(level int) bool { return level <= 0 }

func (s *zapSink) Info(_ int, msg string, kv ...any) { s.log.Info(msg, fields(kv)...) }

func (s *zapSink) Error(err error, msg string, kv ...any) {
	s.log.Warn(msg, append(fields(kv), zap.Error(err))...)
}

func (s *zapSink) WithValues(kv ...any) logr.LogSink {
	return &zapSink{log: s.log.With(fields(kv)...)}
}

func (s *zapSink) WithName(name string) logr.LogSink { return &zapSink{log: s.log.Named(name)} }

// fields turns logr's alternating keys and values into zap fields.
func fields(kv []any) []zap.Field {
	out := make([]zap.Field, 0, len(kv)/2+1)
	for i := 0; i < len(kv); i += 2 {
		key, ok := kv[i].(string)
		if !ok {
			key = fmt.Sprint(kv[i])
		}
		if i+1 == len(kv) {
			out = append(out, zap.Any(key, "(missing value)"))
			break
		}
		out = append(out, zap.Any(key, kv[i+1]))
	}
	return out
}
