package authz

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/policy/folderwatch"
)

// Reload compiles the policy folder and puts it in force. When it does not
// compile, the error (file:line for each problem) is returned and logged, and
// the policy already in force stays.
func (s *Server) Reload(ctx context.Context, dir, query string) error {
	p, err := Load(ctx, dir, query)
	if err != nil {
		s.metrics.reloads.WithLabelValues("error").Inc()
		prev := "none"
		if old := s.policy.Load(); old != nil {
			prev = old.Version
		}
		s.log.Error("policy rejected; the previous one stays in force",
			zap.String("dir", dir), zap.String("in_force", prev), zap.Error(err))
		return err
	}
	s.metrics.reloads.WithLabelValues("ok").Inc()
	s.SetPolicy(p)
	s.log.Info("policy loaded", zap.String("dir", dir), zap.String("version", p.Version), zap.Strings("files", p.Files))
	return nil
}

// Watch reloads the folder whenever a file under it changes (polled every
// interval), until ctx is done. A reload that fails keeps the policy in force.
func (s *Server) Watch(ctx context.Context, dir, query string, interval time.Duration) error {
	folderwatch.Poll(ctx, dir, interval,
		func() { _ = s.Reload(ctx, dir, query) },
		func(err error) { s.log.Error("policy folder unreadable", zap.String("dir", dir), zap.Error(err)) })
	return nil
}
