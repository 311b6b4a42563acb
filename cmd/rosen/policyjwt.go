package main

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"go.uber.org/zap"
	security "istio.io/api/security/v1beta1"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/policy/folderwatch"
	"github.com/rosenmesh/rosen/policy/jwt"
)

// meshJWT keeps ext_authz's JWT providers in step with the configuration:
// the providers of --policy-jwt plus every RequestAuthentication under the
// --config folders, reloaded whenever a file there changes. A configuration
// that does not load keeps the providers in force.
type meshJWT struct {
	log    *zap.Logger
	dirs   []string
	static []jwt.Provider
	tokens *jwt.Reloadable
	mu     sync.Mutex // serialises reloads from several folders

	// followed and lastFromMesh remember what follow last put in force.
	followed     bool
	lastFromMesh []jwt.Provider
}

// reload reads the RequestAuthentications under dirs and puts the merged
// providers in force.
func (m *meshJWT) reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	fromMesh, err := m.meshProviders()
	if err != nil {
		return err
	}
	return m.apply(fromMesh)
}

// meshProviders returns the providers of the RequestAuthentications under dirs.
func (m *meshJWT) meshProviders() ([]jwt.Provider, error) {
	if len(m.dirs) == 0 {
		return nil, nil
	}
	set, err := config.LoadDirs(m.dirs...)
	if err != nil {
		return nil, fmt.Errorf("read RequestAuthentications: %w", err)
	}
	var out []jwt.Provider
	for _, o := range set.Objects {
		if ra, ok := o.Spec.(*security.RequestAuthentication); ok {
			out = append(out, jwt.FromJWTRules(ra.GetJwtRules())...)
		}
	}
	return out, nil
}

// apply merges the static providers with fromMesh and puts them in force.
func (m *meshJWT) apply(fromMesh []jwt.Provider) error {
	ps, conflicts := jwt.Merge(m.static, fromMesh)
	for _, err := range conflicts {
		m.log.Warn("JWT provider conflict", zap.Error(err))
	}
	if err := m.tokens.Update(ps); err != nil {
		return fmt.Errorf("JWT providers: %w", err)
	}
	issuers := make([]string, len(ps))
	for i, p := range ps {
		issuers[i] = p.Issuer
	}
	m.log.Info("ext_authz JWT providers in force", zap.Strings("issuers", issuers))
	return nil
}

// watch reloads on every change under any of the folders until ctx is done.
func (m *meshJWT) watch(ctx context.Context, interval time.Duration) {
	var wg sync.WaitGroup
	for _, d := range m.dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			folderwatch.Poll(ctx, d, interval, func() {
				if err := m.reload(); err != nil {
					m.log.Error("JWT providers not reloaded; the previous ones stay in force", zap.Error(err))
				}
			}, func(err error) {
				if err == nil {
					m.log.Info("config folder readable again", zap.String("dir", d))
					return
				}
				m.log.Warn("config folder unreadable", zap.String("dir", d), zap.Error(err))
			})
		}()
	}
	wg.Wait()
}

// follow puts in force the RequestAuthentications of a published mesh, when
// they differ from the last ones seen (most changes touch routes or
// endpoints, not issuers).
func (m *meshJWT) follow(mesh *model.Mesh) {
	var fromMesh []jwt.Provider
	if mesh.Security != nil {
		for _, ra := range mesh.Security.RequestAuthentications {
			fromMesh = append(fromMesh, jwt.FromJWTRules(ra.Rules)...)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.followed && reflect.DeepEqual(fromMesh, m.lastFromMesh) {
		return
	}
	if err := m.apply(fromMesh); err != nil {
		m.log.Error("JWT providers not reloaded; the previous ones stay in force", zap.Error(err))
		return
	}
	m.followed, m.lastFromMesh = true, fromMesh
}
