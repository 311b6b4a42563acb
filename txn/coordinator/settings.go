package coordinator

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/txn/store"
)

// Settings are the coordinator's defaults that may change while it runs
// (from a TCCPolicy in Kubernetes): what Begin applies to a transaction that
// names no timeout or retry policy, the longest timeout it accepts, and the
// stuck-transaction webhook (transactions begun earlier keep theirs), and
// how long finished transactions are kept (the next purge uses it).
type Settings struct {
	DefaultTimeout time.Duration `json:"defaultTimeout"`
	MaxTimeout     time.Duration `json:"maxTimeout"`
	DefaultPolicy  store.Policy  `json:"defaultPolicy"`
	WebhookURL     string        `json:"webhookURL,omitempty"`
	// Retention is how long committed and aborted transactions are kept;
	// zero or negative keeps them.
	Retention time.Duration `json:"retention"`
}

// Settings returns the defaults in force.
func (c *Coordinator) Settings() Settings { return *c.settings.Load() }

// SettingError names the setting that cannot be used: defaultTimeout,
// maxTimeout, retry or webhook.
type SettingError struct {
	Setting string
	Err     error
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// Check reports the first setting that cannot be used (a *SettingError
// wrapping ErrBadInput).
func (s Settings) Check() error {
	if s.MaxTimeout <= 0 {
		return &SettingError{"maxTimeout", fmt.Errorf("%w: %s: want > 0", ErrBadInput, s.MaxTimeout)}
	}
	if s.DefaultTimeout <= 0 || s.DefaultTimeout > s.MaxTimeout {
		return &SettingError{"defaultTimeout", fmt.Errorf("%w: %s: want 0 < defaultTimeout <= maxTimeout (%s)", ErrBadInput, s.DefaultTimeout, s.MaxTimeout)}
	}
	if err := checkPolicy(s.DefaultPolicy); err != nil {
		return &SettingError{"retry", err}
	}
	if s.WebhookURL != "" {
		if err := checkURL(s.WebhookURL); err != nil {
			return &SettingError{"webhook", err}
		}
	}
	return nil
}

// SetSettings replaces the defaults for transactions begun from now on.
// Settings that fail Check change nothing.
func (c *Coordinator) SetSettings(s Settings) error {
	if err := s.Check(); err != nil {
		return err
	}
	c.settings.Store(&s)
	c.alert.webhook.Store(&s.WebhookURL)
	c.log.Info("coordinator defaults changed", zap.Duration("defaultTimeout", s.DefaultTimeout), zap.Duration("maxTimeout", s.MaxTimeout),
		zap.Duration("retryInitial", s.DefaultPolicy.Initial), zap.Duration("retryMax", s.DefaultPolicy.Max), zap.Int("retryLimit", s.DefaultPolicy.Limit),
		zap.Bool("webhook", s.WebhookURL != ""), zap.Duration("retention", s.Retention))
	return nil
}
