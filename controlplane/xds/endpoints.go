package xds

import (
	"errors"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
)

// UpdateEndpoints publishes m, which the caller knows differs from the last
// published mesh only in the EDS endpoints of the services of hosts (as
// istio.RebuildEndpoints produces it): per group, only the load assignments
// of those services' clusters are built, gated and compared, so the cost is
// that of the change, not of the mesh. Listeners, routes and clusters are
// neither translated nor hashed. When the server cannot take that shortcut
// (no mesh yet, a group without good resources), it falls back to Update.
func (s *Server) UpdateEndpoints(m *model.Mesh, hosts []string) error {
	if m == nil {
		return errors.New("xds: nil mesh")
	}
	s.updateMu.Lock()
	prev, groups := s.current()
	full := prev == nil
	for _, g := range groups {
		if g.resources() == nil {
			full = true
		}
	}
	if full {
		s.updateMu.Unlock()
		return s.Update(m)
	}
	defer s.updateMu.Unlock()

	start := time.Now()
	want := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		want[h] = true
	}
	next := make([]pending, len(groups))
	results := make([]*translate.Resources, len(groups))
	var failures []groupFailure
	changedEDS := 0
	for i, g := range groups {
		r, pend, err := s.groupEndpoints(m, g, want)
		if err != nil {
			failures = append(failures, groupFailure{g.key, err})
			continue
		}
		results[i], next[i] = r, pend
		changedEDS += len(pend[resourcev3.EndpointType].changed)
	}
	if len(failures) > 0 {
		return s.reject(failures)
	}
	for i, g := range groups {
		g.commit(next[i])
		g.setRes(results[i])
	}
	s.mu.Lock()
	s.mesh = m
	s.shared = nil
	s.version++
	s.configErr = nil
	version := s.version
	s.mu.Unlock()
	s.log.Info("endpoints published", zap.Uint64("version", version), zap.Strings("hosts", hosts),
		zap.Int("groups", len(groups)), zap.Int("changedEDS", changedEDS), zap.Duration("took", time.Since(start)))
	return nil
}

// groupEndpoints rebuilds the load assignments of one group's EDS clusters
// that belong to the wanted hosts, gates those that changed and prepares
// them (marshalled once) without touching anything else the group holds.
func (s *Server) groupEndpoints(m *model.Mesh, g *group, hosts map[string]bool) (_ *translate.Resources, _ pending, err error) {
	defer recoverAsError(&err)
	start := time.Now()
	defer func() { s.metrics.translateDur.WithLabelValues("endpoints").Observe(time.Since(start).Seconds()) }()
	s.metrics.translations.WithLabelValues("endpoints").Inc()
	last := g.resources()
	var names []string
	for _, name := range edsClusters(last) {
		if host, _, _, ok := translate.ParseClusterName(name); ok && hosts[host] {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return last, pending{}, nil
	}
	_, changed := g.reuseEndpoints(s.gen.Endpoints(m, names))
	if len(changed) == 0 {
		return last, pending{}, nil
	}
	if err := s.gen.Validate(&translate.Resources{Endpoints: changed, Origins: last.Origins}); err != nil {
		return nil, nil, err
	}
	var d typeDiff
	for _, cla := range changed {
		e, err := newEntry(resourcev3.EndpointType, cla.GetClusterName(), cla)
		if err != nil {
			return nil, nil, err
		}
		d.changed = append(d.changed, e)
	}
	return withEndpoints(last, replaceEndpoints(last.Endpoints, changed)), pending{resourcev3.EndpointType: d}, nil
}

// replaceEndpoints is eps with the assignments of the same cluster names
// replaced by those in changed (eps is not modified).
func replaceEndpoints(eps, changed []*endpointv3.ClusterLoadAssignment) []*endpointv3.ClusterLoadAssignment {
	byName := make(map[string]*endpointv3.ClusterLoadAssignment, len(changed))
	for _, c := range changed {
		byName[c.GetClusterName()] = c
	}
	out := make([]*endpointv3.ClusterLoadAssignment, len(eps), len(eps)+len(changed))
	for i, e := range eps {
		if c, ok := byName[e.GetClusterName()]; ok {
			out[i] = c
			delete(byName, e.GetClusterName())
		} else {
			out[i] = e
		}
	}
	for _, c := range changed { // an assignment the group did not hold yet
		if _, ok := byName[c.GetClusterName()]; ok {
			out = append(out, c)
		}
	}
	return out
}
