package xds

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
)

// plan is one group's next resources, published only if every group has one.
type plan struct {
	g *group
	r *translate.Resources
}

// Update translates m for every proxy group and passes each group's
// resources through the validation gate. If any group fails, nothing is
// published: the last good mesh stays in force and the error (model.Errors of
// *model.FieldError, naming the proxy group) is returned and kept for
// ConfigError and Status. Otherwise only resources that changed are handed
// to the caches. When m differs from the last good mesh only in EDS
// endpoints, only ClusterLoadAssignments are rebuilt: routes, listeners and
// clusters are not translated again.
func (s *Server) Update(m *model.Mesh) error {
	return s.UpdateShared(m, nil)
}

// UpdateShared is Update reusing the translations and checks that the
// caller's gate made of m through sh (validate.MeshShared): a group whose
// proxy the gate translated gets the very clusters and load assignments
// the gate built and checked, so they are neither built nor checked again.
func (s *Server) UpdateShared(m *model.Mesh, sh *translate.Shared) error {
	if m == nil {
		return errors.New("xds: nil mesh")
	}
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	s.dropIdleGroups(time.Now())

	var hash [32]byte
	var hashErr error
	if sh := sh.For(m); sh != nil {
		hash, hashErr = sh.StructureHash()
	} else {
		hash, hashErr = model.StructureHash(m)
	}
	if hashErr != nil {
		s.log.Warn("cannot hash mesh; translating everything", zap.Error(hashErr))
	}
	prev, groups := s.current()

	endpointsOnly := prev != nil && hashErr == nil && hash == s.structHash
	for _, g := range groups {
		if g.resources() == nil {
			endpointsOnly = false // a group without good resources needs a full translation
		}
	}

	start := time.Now()
	// Translation is pure: groups are translated in parallel, one per CPU.
	results := make([]*translate.Resources, len(groups))
	errs := make([]error, len(groups))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if endpointsOnly {
				results[i], errs[i] = s.generateEndpoints(m, g)
			} else {
				results[i], errs[i] = s.generate(m, g.proxy, sh)
			}
		}()
	}
	wg.Wait()
	plans := make([]plan, 0, len(groups))
	var failures []groupFailure
	for i, g := range groups {
		if errs[i] != nil {
			failures = append(failures, groupFailure{g.key, errs[i]})
			continue
		}
		plans = append(plans, plan{g, results[i]})
	}
	if len(failures) > 0 {
		if !s.opts.IsolateGroupFailures {
			return s.reject(failures)
		}
		s.isolate(groups, failures)
		failures = nil
	}

	types := servedTypes
	if endpointsOnly {
		types = []string{resourcev3.EndpointType}
	}
	// Marshal every group's changes first, so that a resource that cannot
	// be marshalled rejects the mesh before any group moves to it.
	gated := time.Now()
	next := make([]pending, len(plans))
	memo := marshalMemo{} // resources shared by groups are marshalled once
	for i, p := range plans {
		pend, err := p.g.prepare(byType(p.r), memo, types...)
		if err != nil {
			failures = append(failures, groupFailure{p.g.key, err})
		}
		next[i] = pend
	}
	if len(failures) > 0 {
		return s.reject(failures)
	}
	changes := map[string]int{}
	for i, p := range plans {
		for t, n := range p.g.commit(next[i]) {
			changes[typeName(t)] += n
		}
		p.g.setRes(p.r)
	}
	s.structHash = hash
	s.mu.Lock()
	s.mesh = m
	s.shared = sh.For(m)
	s.version++
	s.configErr = nil
	version := s.version
	s.mu.Unlock()
	s.log.Info("configuration published", zap.Uint64("version", version), zap.Bool("endpointsOnly", endpointsOnly),
		zap.Int("groups", len(plans)), zap.Any("changed", changes), zap.Duration("took", time.Since(start)),
		zap.Duration("translateAndGate", gated.Sub(start)), zap.Duration("publish", time.Since(gated)))
	return nil
}

// isolate marks groups whose translation failed; they keep their last good
// resources while the other groups publish (Options.IsolateGroupFailures).
func (s *Server) isolate(groups []*group, failures []groupFailure) {
	byKey := make(map[string]*group, len(groups))
	for _, g := range groups {
		byKey[g.key] = g
	}
	for _, f := range failures {
		err := groupErrors([]groupFailure{f})
		if g := byKey[f.group]; g != nil {
			g.setErr(err)
		}
		s.log.Warn("a proxy group cannot take this configuration; it keeps its last good one while the others move on",
			zap.String("group", f.group), zap.Error(err))
	}
}

// reject keeps the last good mesh in force and records why m was refused.
func (s *Server) reject(failures []groupFailure) error {
	errs := groupErrors(failures)
	s.metrics.rejects.Inc()
	s.mu.Lock()
	s.configErr = errs
	s.mu.Unlock()
	s.log.Error("configuration rejected; the last good one stays in force",
		zap.Int("groups", len(failures)), zap.Error(errs))
	return errs
}

// generateEndpoints rebuilds only the endpoints of a group's last good
// resources and passes the assignments that changed through the gate. The
// rest was checked when it was published, and the mesh's structure (hosts,
// ports, subsets: what decides which clusters have an assignment) is the
// same, so the cross-checks cannot fail anew.
func (s *Server) generateEndpoints(m *model.Mesh, g *group) (_ *translate.Resources, err error) {
	defer recoverAsError(&err)
	start := time.Now()
	defer func() { s.metrics.translateDur.WithLabelValues("endpoints").Observe(time.Since(start).Seconds()) }()
	s.metrics.translations.WithLabelValues("endpoints").Inc()
	last := g.resources()
	eps, changed := g.reuseEndpoints(s.gen.Endpoints(m, edsClusters(last)))
	if err := s.gen.Validate(&translate.Resources{Endpoints: changed, Origins: last.Origins}); err != nil {
		return nil, err
	}
	return withEndpoints(last, eps), nil
}

type groupFailure struct {
	group string
	err   error
}

// groupErrors flattens the groups' errors into one list of FieldErrors. An
// error found in several groups (a broken VirtualService bound to every
// sidecar) is listed once, naming the first group it was found in.
func groupErrors(fs []groupFailure) model.Errors {
	var out model.Errors
	seen := map[string]bool{}
	for _, f := range fs {
		for _, fe := range model.AsFieldErrors(f.err) {
			key := fe.Error()
			if seen[key] {
				continue
			}
			seen[key] = true
			c := *fe
			c.Message = fmt.Sprintf("%s (proxy group %s)", fe.Message, f.group)
			out = append(out, &c)
		}
	}
	return out
}

// dropIdleGroups forgets groups that have had no stream for
// Options.GroupIdleTimeout. Called with updateMu held.
func (s *Server) dropIdleGroups(now time.Time) {
	if s.opts.GroupIdleTimeout < 0 {
		return
	}
	cutoff := now.Add(-s.opts.GroupIdleTimeout)
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, g := range s.groups {
		// Checked and deleted under s.mu: a stream counts itself in the
		// tracker before it looks its group up, so it either keeps the
		// group alive or finds it gone and creates a new one.
		if g.created.Before(cutoff) && s.tracker.groupIdle(key, cutoff) {
			delete(s.groups, key)
			s.log.Info("proxy group dropped after being idle", zap.String("group", key))
		}
	}
}

// current returns the last good mesh and every group, sorted by key.
func (s *Server) current() (*model.Mesh, []*group) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	groups := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		groups = append(groups, g)
	}
	sortGroups(groups)
	return s.mesh, groups
}
