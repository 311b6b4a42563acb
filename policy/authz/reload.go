package authz

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path/filepath"
	"time"

	"go.uber.org/zap"
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
// interval: names, sizes and modification times), until ctx is done. The
// first load happens before Watch returns control to the poll loop, and its
// error is returned only through the log: a bad folder at start leaves every
// request denied until it is fixed.
func (s *Server) Watch(ctx context.Context, dir, query string, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Second
	}
	last, err := fingerprint(dir)
	if err != nil {
		s.log.Error("policy folder unreadable", zap.String("dir", dir), zap.Error(err))
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		fp, err := fingerprint(dir)
		if err != nil {
			s.log.Error("policy folder unreadable", zap.String("dir", dir), zap.Error(err))
			continue
		}
		if fp == last {
			continue
		}
		last = fp
		_ = s.Reload(ctx, dir, query)
	}
}

// fingerprint hashes the names, sizes and mtimes of the files under dir.
func fingerprint(dir string) (uint64, error) {
	h := fnv.New64a()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", path, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("policy folder %s: %w", dir, err)
	}
	return h.Sum64(), nil
}
