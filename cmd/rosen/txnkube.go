package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/controlplane/source/kube"
	"github.com/rosenmesh/rosen/txn/coordinator"
)

// tccPolicySpec is a TCCPolicy's spec (manifests/crds/rosen.dev_tccpolicies.yaml).
type tccPolicySpec struct {
	DefaultTimeout string `json:"defaultTimeout,omitempty"`
	MaxTimeout     string `json:"maxTimeout,omitempty"`
	Retry          *struct {
		Initial string `json:"initial,omitempty"`
		Max     string `json:"max,omitempty"`
		Limit   int    `json:"limit,omitempty"`
	} `json:"retry,omitempty"`
	Webhook   *string `json:"webhook,omitempty"`
	Retention string  `json:"retention,omitempty"`
}

// handleTCCPolicies applies the clusters' TCCPolicy to the coordinator:
// the first by namespace/name (primary cluster first) is used, over the
// --txn-* flags' values for the fields it leaves out; other TCCPolicies and
// one that fails its checks are refused, naming the field. Without a
// TCCPolicy the flags' values apply again.
func handleTCCPolicies(env *moduleEnv, c *coordinator.Coordinator) error {
	flags := c.Settings()
	log := env.Log.Named("txn")
	return env.Kube.HandleModuleKind(kube.KindTCCPolicy, func(objs []kube.ModuleObject) []kube.Refusal {
		var refusals []kube.Refusal
		for i := 1; i < len(objs); i++ {
			refusals = append(refusals, kube.Refusal{Index: i, Field: "metadata.name",
				Message: fmt.Sprintf("only one TCCPolicy is used, the first by namespace/name: %s", objs[0].Where())})
		}
		want := flags
		if len(objs) > 0 {
			s, field, err := tccSettings(flags, objs[0].Spec)
			if err != nil {
				log.Warn("TCCPolicy refused; keeping the coordinator's current defaults", zap.String("object", objs[0].Where()), zap.String("field", field), zap.Error(err))
				return append(refusals, kube.Refusal{Index: 0, Field: field, Message: err.Error()})
			}
			want = s
		}
		if want != c.Settings() {
			_ = c.SetSettings(want) // checked by tccSettings
		}
		return refusals
	})
}

// tccSettings reads a TCCPolicy spec over base; on error it names the field.
func tccSettings(base coordinator.Settings, spec []byte) (coordinator.Settings, string, error) {
	var p tccPolicySpec
	if field, err := decodeTCCPolicy(spec, &p); err != nil {
		return base, field, err
	}
	s := base
	dur := func(v string, dst *time.Duration) error {
		if v == "" {
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration (30s, 2m): %w", v, err)
		}
		*dst = d
		return nil
	}
	if err := dur(p.DefaultTimeout, &s.DefaultTimeout); err != nil {
		return base, "spec.defaultTimeout", err
	}
	if err := dur(p.MaxTimeout, &s.MaxTimeout); err != nil {
		return base, "spec.maxTimeout", err
	}
	if p.Retry != nil {
		if err := dur(p.Retry.Initial, &s.DefaultPolicy.Initial); err != nil {
			return base, "spec.retry.initial", err
		}
		if err := dur(p.Retry.Max, &s.DefaultPolicy.Max); err != nil {
			return base, "spec.retry.max", err
		}
		if p.Retry.Limit != 0 {
			s.DefaultPolicy.Limit = p.Retry.Limit
		}
	}
	if p.Webhook != nil {
		s.WebhookURL = *p.Webhook
	}
	if err := dur(p.Retention, &s.Retention); err != nil {
		return base, "spec.retention", err
	}
	if err := s.Check(); err != nil {
		var se *coordinator.SettingError
		if errors.As(err, &se) {
			return base, "spec." + se.Setting, se.Err
		}
		return base, "spec", err
	}
	return s, "", nil
}

// decodeTCCPolicy decodes strictly; an unknown or mistyped field is named.
func decodeTCCPolicy(spec []byte, p *tccPolicySpec) (string, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(spec, &keys); err != nil {
		return "spec", fmt.Errorf("want an object: %w", err)
	}
	known := map[string]bool{"defaultTimeout": true, "maxTimeout": true, "retry": true, "webhook": true, "retention": true}
	for k := range keys {
		if !known[k] {
			return "spec." + k, fmt.Errorf("unknown field (known: defaultTimeout, maxTimeout, retry, webhook, retention)")
		}
	}
	if r, ok := keys["retry"]; ok {
		var rk map[string]json.RawMessage
		if err := json.Unmarshal(r, &rk); err != nil {
			return "spec.retry", fmt.Errorf("want an object: %w", err)
		}
		for k := range rk {
			if k != "initial" && k != "max" && k != "limit" {
				return "spec.retry." + k, fmt.Errorf("unknown field (known: initial, max, limit)")
			}
		}
	}
	if err := json.Unmarshal(spec, p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return "spec." + te.Field, fmt.Errorf("%s is not a %s", te.Value, te.Type)
		}
		return "spec", err
	}
	return "", nil
}
