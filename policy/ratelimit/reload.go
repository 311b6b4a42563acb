package ratelimit

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/policy/folderwatch"
)

// Reload loads the configuration under path and puts it in force; a bad one
// is returned, logged and kept for Rejection, and the configuration in
// force stays. A configuration that loads clears the rejection.
func (s *Service) Reload(path string) error {
	c, err := LoadDir(path)
	if err != nil {
		s.metrics.reloads.WithLabelValues("error").Inc()
		prev := s.inForce()
		s.rejected.Set(path, err, prev)
		s.log.Error("rate-limit config rejected; the previous one stays in force",
			zap.String("path", path), zap.String("in_force", prev), zap.Error(err))
		return err
	}
	s.metrics.reloads.WithLabelValues("ok").Inc()
	s.SetConfig(c)
	s.rejected.Clear()
	s.log.Info("rate-limit config loaded", zap.String("path", path), zap.String("version", c.Version), zap.Strings("files", c.Files))
	return nil
}

// Rejection is why the last load of the configuration was refused (or why
// its path became unreadable), with the version still in force; nil when
// the last load was accepted.
func (s *Service) Rejection() *folderwatch.Rejection { return s.rejected.Get() }

func (s *Service) inForce() string {
	if c := s.config.Load(); c != nil && c.Version != "" {
		return c.Version
	}
	return "none"
}

// Watch reloads path whenever it changes, until ctx is done. A path that
// becomes unreadable keeps the configuration in force and is logged (and
// shown by Rejection) once, not on every poll, until it is readable again.
func (s *Service) Watch(ctx context.Context, path string, interval time.Duration) {
	folderwatch.Poll(ctx, path, interval,
		func() { _ = s.Reload(path) },
		func(err error) {
			if err == nil {
				s.log.Info("rate-limit config readable again; reloading", zap.String("path", path))
				return
			}
			prev := s.inForce()
			s.rejected.Set(path, fmt.Errorf("rate-limit config unreadable: %w", err), prev)
			s.log.Error("rate-limit config unreadable; the previous one stays in force",
				zap.String("path", path), zap.String("in_force", prev), zap.Error(err))
		})
}

// SweepEvery drops expired in-memory counters every interval until ctx is
// done (no-op for other stores).
func (s *Service) SweepEvery(ctx context.Context, interval time.Duration) {
	m, ok := s.opts.Counters.(*Memory)
	if !ok {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m.Sweep(now)
		}
	}
}
