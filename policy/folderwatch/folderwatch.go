// Package folderwatch polls a folder of policy or rate-limit files and calls
// back when anything under it changes. Polling (names, sizes, modification
// times) is used rather than inotify so that it works the same on bind
// mounts, Kubernetes ConfigMap volumes (symlink swaps) and network shares.
package folderwatch

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path/filepath"
	"sync"
	"time"
)

// Fingerprint hashes the names, sizes and modification times of the files
// under path (a folder or one file), following the top-level symlink.
func Fingerprint(path string) (uint64, error) {
	h := fnv.New64a()
	root, err := filepath.EvalSymlinks(path)
	if err != nil {
		return 0, fmt.Errorf("folderwatch: %w", err)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
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
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("folderwatch: %s: %w", path, err)
	}
	return h.Sum64(), nil
}

// Poll calls changed each time the fingerprint of path differs from the one
// taken when Poll started (or at the previous call), checking every
// interval, until ctx is done. failed is called once when path becomes
// unreadable (not on every check while it stays so), and with nil when it
// is readable again; changed is then called too, so that what happened
// while it was unreadable is loaded.
func Poll(ctx context.Context, path string, interval time.Duration, changed func(), failed func(error)) {
	if interval <= 0 {
		interval = time.Second
	}
	last, err := Fingerprint(path)
	unreadable := err != nil
	if unreadable {
		failed(err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp, err := Fingerprint(path)
		if err != nil {
			if !unreadable {
				unreadable = true
				failed(err)
			}
			continue
		}
		if unreadable {
			unreadable = false
			failed(nil)
			last = fp
			changed()
			continue
		}
		if fp != last {
			last = fp
			changed()
		}
	}
}

// Rejection is the current refusal of a watched path: its last load failed
// (or it became unreadable) and what was in force before stays in force.
type Rejection struct {
	Path  string `json:"path"`
	Error string `json:"error"`
	// Time is when the load was refused.
	Time time.Time `json:"time"`
	// InForce is the version still in force ("none" when nothing ever loaded).
	InForce string `json:"in_force"`
}

// LastRejection holds a path's current Rejection; the zero value holds none.
// It is safe for concurrent use.
type LastRejection struct {
	mu sync.Mutex
	r  *Rejection
}

// Set records a refused load of path.
func (l *LastRejection) Set(path string, err error, inForce string) {
	r := &Rejection{Path: path, Error: err.Error(), Time: time.Now().UTC(), InForce: inForce}
	l.mu.Lock()
	l.r = r
	l.mu.Unlock()
}

// Clear records an accepted load.
func (l *LastRejection) Clear() {
	l.mu.Lock()
	l.r = nil
	l.mu.Unlock()
}

// Get returns a copy of the current rejection, nil when the last load was accepted.
func (l *LastRejection) Get() *Rejection {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r == nil {
		return nil
	}
	r := *l.r
	return &r
}
