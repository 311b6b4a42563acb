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
// interval, until ctx is done. Unreadable states are passed to failed.
func Poll(ctx context.Context, path string, interval time.Duration, changed func(), failed func(error)) {
	if interval <= 0 {
		interval = time.Second
	}
	last, err := Fingerprint(path)
	if err != nil {
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
			failed(err)
			continue
		}
		if fp != last {
			last = fp
			changed()
		}
	}
}
