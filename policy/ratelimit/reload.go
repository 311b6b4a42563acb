package ratelimit

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/policy/folderwatch"
)

// Reload loads the configuration under path and puts it in force; a bad one
// is returned and logged, and the configuration in force stays.
func (s *Service) Reload(path string) error {
	c, err := LoadDir(path)
	if err != nil {
		s.metrics.reloads.WithLabelValues("error").Inc()
		s.log.Error("rate-limit config rejected; the previous one stays in force", zap.String("path", path), zap.Error(err))
		return err
	}
	s.metrics.reloads.WithLabelValues("ok").Inc()
	s.SetConfig(c)
	s.log.Info("rate-limit config loaded", zap.String("path", path), zap.Strings("files", c.Files))
	return nil
}

// Watch reloads path whenever it changes, until ctx is done.
func (s *Service) Watch(ctx context.Context, path string, interval time.Duration) {
	folderwatch.Poll(ctx, path, interval,
		func() { _ = s.Reload(path) },
		func(err error) { s.log.Error("rate-limit config unreadable", zap.String("path", path), zap.Error(err)) })
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
