package main

import (
	"strings"
	"testing"
	"time"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
)

func TestTCCSettingsNamesTheField(t *testing.T) {
	base := coordinator.Settings{DefaultTimeout: time.Minute, MaxTimeout: time.Hour, DefaultPolicy: store.Policy{Initial: time.Second, Max: time.Minute, Limit: 10}}
	s, field, err := tccSettings(base, []byte(`{"defaultTimeout":"30s","retry":{"limit":3},"webhook":"https://alerts.example/tcc","retention":"24h"}`))
	if err != nil || field != "" {
		t.Fatalf("%s: %v", field, err)
	}
	want := base
	want.DefaultTimeout, want.DefaultPolicy.Limit, want.WebhookURL, want.Retention = 30*time.Second, 3, "https://alerts.example/tcc", 24*time.Hour
	if s != want {
		t.Fatalf("settings %+v, want %+v", s, want)
	}
	if s, _, err := tccSettings(base, []byte(`null`)); err != nil || s != base {
		t.Fatalf("an empty spec: %+v %v", s, err)
	}
	bad := []struct{ spec, field, text string }{
		{`{"defaultTimeout":"soon"}`, "spec.defaultTimeout", "not a duration"},
		{`{"defaultTimeout":"2h"}`, "spec.defaultTimeout", "want 0 < defaultTimeout <= maxTimeout"},
		{`{"maxTimeout":"-1s"}`, "spec.maxTimeout", "want > 0"},
		{`{"retry":{"initial":"1m","max":"1s"}}`, "spec.retry", "max >= initial"},
		{`{"retry":{"max":"x"}}`, "spec.retry.max", "not a duration"},
		{`{"retry":{"limit":"3"}}`, "spec.retry.limit", "is not a int"},
		{`{"retry":{"tries":3}}`, "spec.retry.tries", "unknown field"},
		{`{"webhook":"ftp://x"}`, "spec.webhook", "http(s)"},
		{`{"retention":"7d"}`, "spec.retention", "not a duration"},
		{`{"colour":"red"}`, "spec.colour", "unknown field"},
	}
	for _, b := range bad {
		s, field, err := tccSettings(base, []byte(b.spec))
		if err == nil || field != b.field || !strings.Contains(err.Error(), b.text) || s != base {
			t.Errorf("%s: field %q err %v settings %+v; want %s containing %q", b.spec, field, err, s, b.field, b.text)
		}
	}
}
