package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gofrs/flock"
)

// dataLockName is the file in --data that a serving process holds an
// exclusive lock on (flock: the kernel drops it when the process exits,
// SIGKILL included, so a crash never leaves a stale lock behind).
const dataLockName = "rosen.lock"

// lockData takes the --data folder for this process. Two processes on one
// folder would share a SQLite transaction store meant for one process and an
// embedded JetStream store that must have a single server; the second one
// is refused with the reason instead. release is safe to call more than once.
func lockData(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--data %s: %w", dir, err)
	}
	path := filepath.Join(dir, dataLockName)
	l := flock.New(path)
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("--data %s: lock %s: %w", dir, path, err)
	}
	if !ok {
		return nil, fmt.Errorf("--data %s is in use by another rosen process (it holds %s); give each process its own --data (replicas share state through --txn-store postgres|redis or --cqrs-nats-url, not a folder)", dir, path)
	}
	return func() { _ = l.Unlock() }, nil
}
