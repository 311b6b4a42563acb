package runner

import (
	"context"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// Merge runs several sources (a config folder and Kubernetes clusters, say)
// as one: after every source has delivered its first set, each change of
// any of them yields the union of their latest sets. A source whose latest
// load failed makes the union fail with its error (the runner keeps the last
// good configuration), and an object defined by two sources is an error
// naming both places, as within one source. With one source, Merge returns it.
func Merge(sources ...Source) Source {
	if len(sources) == 1 {
		return sources[0]
	}
	return &merged{sources: sources}
}

type merged struct {
	sources []Source

	mu     sync.Mutex
	sets   []*config.Set
	errs   []error
	loaded []bool
}

func (m *merged) Run(ctx context.Context, onChange func(*config.Set, error)) error {
	n := len(m.sources)
	m.sets, m.errs, m.loaded = make([]*config.Set, n), make([]error, n), make([]bool, n)
	eg, ctx := errgroup.WithContext(ctx)
	for i, src := range m.sources {
		eg.Go(func() error {
			return src.Run(ctx, func(set *config.Set, err error) { m.update(i, set, err, onChange) })
		})
	}
	return eg.Wait()
}

// update records source i's latest result and emits the union once every
// source has spoken. Emission happens under the lock so that unions reach
// the consumer in the order they were formed.
func (m *merged) update(i int, set *config.Set, err error, onChange func(*config.Set, error)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sets[i], m.errs[i], m.loaded[i] = set, err, true
	for _, ok := range m.loaded {
		if !ok {
			return
		}
	}
	var errs model.Errors
	var objs []*config.Object
	for j := range m.sources {
		if m.errs[j] != nil {
			errs = append(errs, m.errs[j])
			continue
		}
		if m.sets[j] != nil {
			objs = append(objs, m.sets[j].Objects...)
		}
	}
	if len(errs) > 0 {
		onChange(nil, errs)
		return
	}
	union, derrs := config.NewSet(objs)
	if len(derrs) > 0 {
		onChange(nil, derrs)
		return
	}
	for j := range m.sources {
		if m.sets[j] != nil {
			union.Skipped = append(union.Skipped, m.sets[j].Skipped...)
		}
	}
	onChange(union, nil)
}
