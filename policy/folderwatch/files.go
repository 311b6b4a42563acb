package folderwatch

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// MaxFileSize bounds one policy or rate-limit file, as config files are
// bounded (controlplane/config.MaxFileSize).
const MaxFileSize = 64 << 20

// CheckTree refuses, under path (a folder or one file), any visible file
// that is not a regular file (a named pipe would block the reader, and with
// it every later reload, for ever) or is larger than MaxFileSize. Names
// starting with "." (a ConfigMap's ..data, editor files) are skipped, as
// the loaders skip them; symlinks are followed.
func CheckTree(path string) error {
	root, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		return checkInfo(p, info)
	})
}

func checkInfo(p string, info fs.FileInfo) error {
	switch {
	case info.IsDir():
		return nil
	case !info.Mode().IsRegular():
		return fmt.Errorf("%s: not a regular file (%s); policy files must be plain files", p, info.Mode().Type())
	case info.Size() > MaxFileSize:
		return fmt.Errorf("%s: file is %d bytes; the limit is %d", p, info.Size(), MaxFileSize)
	}
	return nil
}

// ReadFile reads one regular file of at most MaxFileSize bytes; it opens
// without blocking, so a named pipe is an error, not a hang.
func ReadFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkInfo(path, info); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: file grew past the limit of %d bytes while being read", path, MaxFileSize)
	}
	return data, nil
}
