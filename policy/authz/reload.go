package authz

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/policy/folderwatch"
)

// Reload compiles the policy folder and puts it in force. When it does not
// compile, the error (file:line for each problem) is returned, logged and
// kept for Rejection, and the policy already in force stays. A policy that
// loads clears the rejection.
func (s *Server) Reload(ctx context.Context, dir, query string) error {
	p, err := Load(ctx, dir, query)
	if err != nil {
		s.metrics.reloads.WithLabelValues("error").Inc()
		prev := s.inForce()
		s.rejected.Set(dir, err, prev)
		s.log.Error("policy rejected; the previous one stays in force",
			zap.String("dir", dir), zap.String("in_force", prev), zap.Error(err))
		return err
	}
	s.metrics.reloads.WithLabelValues("ok").Inc()
	s.SetPolicy(p)
	s.rejected.Clear()
	s.log.Info("policy loaded", zap.String("dir", dir), zap.String("version", p.Version), zap.Strings("files", p.Files))
	return nil
}

// Rejection is why the last load of the policy folder was refused (a policy
// that does not compile, or a folder that became unreadable), with the
// version still in force; nil when the last load was accepted.
func (s *Server) Rejection() *folderwatch.Rejection { return s.rejected.Get() }

func (s *Server) inForce() string {
	if p := s.policy.Load(); p != nil {
		return p.Version
	}
	return "none"
}

// Watch reloads the folder whenever a file under it changes (polled every
// interval), until ctx is done. A reload that fails keeps the policy in
// force; so does a folder that becomes unreadable, which is logged (and
// shown by Rejection) once, not on every poll, until it is readable again.
func (s *Server) Watch(ctx context.Context, dir, query string, interval time.Duration) error {
	folderwatch.Poll(ctx, dir, interval,
		func() { _ = s.Reload(ctx, dir, query) },
		func(err error) {
			if err == nil {
				s.log.Info("policy folder readable again; reloading", zap.String("dir", dir))
				return
			}
			prev := s.inForce()
			s.rejected.Set(dir, fmt.Errorf("policy folder unreadable: %w", err), prev)
			s.log.Error("policy folder unreadable; the previous policy stays in force",
				zap.String("dir", dir), zap.String("in_force", prev), zap.Error(err))
		})
	return nil
}
