package kube

import (
	"errors"
	"testing"

	"github.com/go-logr/logr"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestZapSink(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	l := logr.New(&zapSink{log: zap.New(core)}).WithName("reflector").WithValues("kind", "Service")
	l.Info("watch ended", "reason", "timeout", "odd")
	l.V(4).Info("chatter")
	l.Error(errors.New("connection refused"), "failed to list")
	got := logs.All()
	if len(got) != 2 {
		t.Fatalf("%d entries: %+v", len(got), got)
	}
	info, warn := got[0], got[1]
	if info.LoggerName != "reflector" || info.Message != "watch ended" || info.ContextMap()["kind"] != "Service" ||
		info.ContextMap()["reason"] != "timeout" || info.ContextMap()["odd"] != "(missing value)" {
		t.Errorf("info %+v %v", info.Entry, info.ContextMap())
	}
	if warn.Level != zap.WarnLevel || warn.ContextMap()["error"] != "connection refused" {
		t.Errorf("error %+v %v", warn.Entry, warn.ContextMap())
	}
}
