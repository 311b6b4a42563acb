// Package plainfile reads the files users drop into watched folders (mesh
// config, Rego policies, rate-limit YAML): only regular files of bounded
// size, opened without blocking, so that a named pipe, a device or a
// runaway file cannot hang or exhaust the reload that reads it.
package plainfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxSize bounds one file. Real config is kilobytes to a few megabytes; the
// bound keeps a runaway file (or a symlink to /dev/zero) from taking the
// process down.
const MaxSize = 64 << 20

// Refused is the error for a file refused for what it is (not a regular
// file, too large), as opposed to one that could not be opened or read.
type Refused struct{ Reason string }

func (e *Refused) Error() string { return e.Reason }

func refused(format string, args ...any) error {
	return &Refused{Reason: fmt.Sprintf(format, args...)}
}

// IsRefused reports whether err is a Refused.
func IsRefused(err error) bool {
	var r *Refused
	return errors.As(err, &r)
}

// Check refuses what is not a regular file or is larger than MaxSize.
func Check(info fs.FileInfo) error {
	switch {
	case info.IsDir():
		return nil
	case !info.Mode().IsRegular():
		return refused("not a regular file (%s); only plain files are read", info.Mode().Type())
	case info.Size() > MaxSize:
		return refused("file is %d bytes; the limit is %d", info.Size(), MaxSize)
	}
	return nil
}

// Read reads one regular file of at most MaxSize bytes.
func Read(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return nil, refused("a folder, not a file")
	}
	if err := Check(info); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, refused("file grew past the limit of %d bytes while being read", MaxSize)
	}
	return data, nil
}
