// Package file is a configuration source backed by folders of YAML files,
// watched with fsnotify: every burst of changes reloads the set once,
// debounced, re-parsing only the files that changed.
package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/controlplane/config"
)

// Debounce defaults: a burst applies DefaultDebounce after its last write,
// and at most MaxDelay after its first, so a constant stream still applies.
const (
	DefaultDebounce = 200 * time.Millisecond
	MaxDelay        = 2 * time.Second
)

// Source watches folders (and files) of configuration.
type Source struct {
	dirs     []string
	log      *zap.Logger
	debounce time.Duration
	maxDelay time.Duration
	cache    *parseCache
}

// New returns a source over dirs (folders or single files). A debounce of 0
// means DefaultDebounce; a nil logger logs nothing.
func New(dirs []string, log *zap.Logger, debounce time.Duration) *Source {
	if log == nil {
		log = zap.NewNop()
	}
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	return &Source{dirs: dirs, log: log, debounce: debounce, maxDelay: max(MaxDelay, debounce), cache: newParseCache()}
}

// Run loads the configuration, calls onChange with it, then watches for
// changes and calls onChange after each debounced burst: with the new set, or
// with (nil, err) when it does not load (the caller keeps its last good one).
// It returns when ctx ends (nil) or the watcher fails.
func (s *Source) Run(ctx context.Context, onChange func(*config.Set, error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("file source: %w", err)
	}
	defer w.Close()
	for _, d := range s.dirs {
		s.watchTree(w, d)
	}
	s.load(onChange)

	var timer *time.Timer
	var fire <-chan time.Time
	var first time.Time // first event of the pending burst
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("file source: watcher closed")
			}
			if !s.relevant(w, ev) {
				continue
			}
			now := time.Now()
			if fire == nil {
				first = now
			}
			wait := s.debounce
			if rest := s.maxDelay - now.Sub(first); rest < wait {
				wait = max(rest, 0)
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Stop()
				timer.Reset(wait)
			}
			fire = timer.C
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("file source: watcher closed")
			}
			s.log.Warn("file watcher error", zap.Error(err))
		case <-fire:
			fire = nil
			// Folders may have appeared or been replaced: watch them again.
			for _, d := range s.dirs {
				s.watchTree(w, d)
			}
			s.load(onChange)
		}
	}
}

// load reads the configuration: only files that changed since the last
// load are parsed again (cache.go).
func (s *Source) load(onChange func(*config.Set, error)) {
	start := time.Now()
	set, st, err := s.cache.load(s.dirs)
	if err != nil {
		// The consumer reports each error (file, resource, field) once.
		s.log.Debug("config load failed", zap.Strings("dirs", s.dirs), zap.Int("parsed", st.parsed), zap.Error(err))
		onChange(nil, err)
		return
	}
	s.log.Info("config loaded", zap.Strings("dirs", s.dirs), zap.Int("objects", len(set.Objects)), zap.Int("skipped", len(set.Skipped)),
		zap.Int("files", st.files), zap.Int("filesParsed", st.parsed), zap.Duration("took", time.Since(start)))
	onChange(set, nil)
}

// relevant reports whether an event may change the configuration, and
// watches folders created under a watched tree.
func (s *Source) relevant(w *fsnotify.Watcher, ev fsnotify.Event) bool {
	if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write|fsnotify.Create|fsnotify.Remove|fsnotify.Rename) {
		return false
	}
	if ev.Has(fsnotify.Create) {
		if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
			s.watchTree(w, ev.Name)
			return true // it may already hold files
		}
	}
	if config.IsConfigFile(ev.Name) {
		return true
	}
	// A removed or renamed folder changes the set; an unknown name might be
	// one (it no longer exists, so we cannot stat it).
	if ev.Has(fsnotify.Remove|fsnotify.Rename) && !strings.HasPrefix(filepath.Base(ev.Name), ".") && filepath.Ext(ev.Name) == "" {
		return true
	}
	return false
}

// watchTree watches a folder and its visible subfolders; for a file it
// watches its folder (editors replace files by renaming over them). A path
// that does not exist yet is watched through its closest existing parent.
func (s *Source) watchTree(w *fsnotify.Watcher, root string) {
	info, err := os.Stat(root)
	if err != nil {
		if parent := filepath.Dir(root); parent != root {
			s.add(w, parent)
		}
		return
	}
	if !info.IsDir() {
		s.add(w, filepath.Dir(root))
		return
	}
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if path != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		s.add(w, path)
		return nil
	})
}

func (s *Source) add(w *fsnotify.Watcher, dir string) {
	for _, p := range w.WatchList() {
		if p == dir {
			return
		}
	}
	if err := w.Add(dir); err != nil {
		s.log.Warn("cannot watch folder", zap.String("dir", dir), zap.Error(err))
	}
}
